import type { Log, defaultFileIO } from '../../native-free-storage/index.js';

/**
 * Types derived from the public API so the tests depend only on what index.ts exports
 * (Log, StorageError, defaultFileIO), not on which helper interfaces it also re-exports.
 */
export type LogOptionsInput = NonNullable<Parameters<typeof Log.open>[1]>;
export type AppendRecordInput = Parameters<Log['append']>[0][number];
export type AppendOutcome = Awaited<ReturnType<Log['append']>>;
export type StoredRecord = ReturnType<Log['read']>[number];
export type FileIOImpl = typeof defaultFileIO;
