/**
 * The native-free storage layer: an append-only segmented log on plain node:fs. Nothing here imports
 * the engine or the server.
 */
export { Log, type AppendResult, type LogState, type SharedIndexImages } from './log.js';
export type { AppendRecord, PackedRecords } from './append-batch.js';
export { OffsetIndex } from './offset-index.js';
export { TimeIndex } from './time-index.js';
export { StorageError, type StorageErrorCode } from './errors.js';
export { defaultFileIO, writeFileAtomic, writeFileAtomicAsync, type FileIO } from './file-io.js';
export { DEFAULT_LOG_OPTIONS, type LogOptions, type FsyncPolicy } from './options.js';
export type { LogRecord } from './record.js';
export { recordAttributes, recordBodyStart, recordStream, recordTimestamp } from './record.js';
export type { ReadOptions, ReadBatch, RecordVisitor } from './log-reader.js';
export type { RecoveryReport } from './log-loader.js';
export type { RetentionResult } from './retention.js';
export { rewriteSegments, type RewriteOptions, type CompactionResult, type CompactionProgress, type KeyCompactionReport } from './segment-rewriter.js';
export {
  DEFAULT_COMPACTION_IO_BYTES_PER_SECOND,
  DEFAULT_COMPACTION_CHUNK_BYTES,
  type CompactionPlan,
  type CompactionTask,
  type DropRange,
  type KeyCompactionPlan,
  type SegmentSnapshot,
} from './compaction-plan.js';
export type { CompactionKey, KeyExtractor } from './key-compaction.js';
export type { CompactionOutput } from './compaction-output.js';
export type { SealedSegmentInfo, InstallResult, InstallOptions } from './compaction-install.js';
export type { SwapStep, SwapHook } from './compaction-swap.js';
export { proposeMerges, type MergeProposalOptions } from './segment-merges.js';
