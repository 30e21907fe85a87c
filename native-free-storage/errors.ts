/**
 * Typed errors of the storage layer. Every failure a caller can see carries a stable `code`,
 * so the engine can map it to a client-facing error without parsing messages.
 */
export type StorageErrorCode =
  | 'WRITE_FAILED' // a write of log data failed; the batch was not stored
  | 'FSYNC_FAILED' // an fsync failed; appends waiting on it were not confirmed
  | 'LOG_FAILED' // the log stopped accepting appends after an earlier write/fsync failure
  | 'LOG_CLOSED' // the log was closed
  | 'LOG_LOCKED' // another process has the log open
  | 'APPEND_QUEUE_FULL' // too many appends are waiting for durability; retry after some complete
  | 'RECORD_TOO_LARGE' // a record exceeds maxRecordBytes
  | 'OFFSET_OUT_OF_RANGE' // a read below the oldest retained offset
  | 'CORRUPT_RECORD' // a stored record failed its checksum on read
  | 'INVALID_ARGUMENT' // a caller passed something the log cannot store or answer
  | 'COMPACTION_BUSY' // another compaction of this log is prepared and not yet installed or aborted
  | 'COMPACTION_STALE' // the segments a compaction was planned on changed (retention, reopen) before it was installed
  | 'COMPACTION_ABORTED' // a compaction was cancelled before it finished
  | 'COMPACTION_FAILED'; // a compaction could not complete (its worker failed; or its swap failed half-way: the next open finishes it, and the log takes no further compaction until then)

export class StorageError extends Error {
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

/** The errno-style code of an underlying error (ENOSPC, EIO…), for messages. */
export function errnoCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}
