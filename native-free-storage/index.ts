/**
 * The native-free storage layer: an append-only segmented log on plain node:fs. Nothing here imports
 * the engine or the server.
 */
export { Log, type AppendRecord, type AppendResult, type LogState, type SharedIndexImages } from './log.js';
export { OffsetIndex } from './offset-index.js';
export { TimeIndex } from './time-index.js';
export { StorageError, type StorageErrorCode } from './errors.js';
export { defaultFileIO, writeFileAtomic, type FileIO } from './file-io.js';
export { DEFAULT_LOG_OPTIONS, type LogOptions, type FsyncPolicy } from './options.js';
export type { LogRecord } from './record.js';
export type { ReadOptions, ReadBatch } from './log-reader.js';
export type { RecoveryReport } from './log-loader.js';
export type { RetentionResult } from './retention.js';
