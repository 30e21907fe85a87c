/**
 * The durable registry of clients: `<dataDir>/clients.json`, `{"v":1,"clients":[ClientRecord...]}`.
 * The CLI writes it while the engine may be running; every write replaces the whole file by an atomic
 * rename, so a reader sees the old file or the new one, never half of one. The engine notices
 * changes by polling the file's identity (inode, size, mtime), which costs one stat per interval.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EngineError } from '../engine/errors.js';
import { validateClientRecord, type ClientRecord } from './client-record.js';
import { describeError, writePrivateFileAtomic } from './private-file.js';

export const CLIENTS_FILE = 'clients.json';
export const CLIENTS_FILE_VERSION = 1;
/** A bound on what one read loads into memory; thousands of clients fit in far less. */
export const MAX_CLIENTS_FILE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_WATCH_INTERVAL_MS = 500;

export interface AddClientOptions {
  /** Overwrite an existing client with the same id (e.g. to rotate its key) instead of refusing. */
  replace?: boolean;
}

/** Which version of the file was read: a rename gives a new inode even when size and mtime match. */
interface FileVersion {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
}

/** `null`: the file does not exist. `undefined`: not known (after our own write), so re-read. */
type KnownVersion = FileVersion | null | undefined;

export class ClientStore {
  readonly file: string;
  #clients: Map<string, ClientRecord>;
  #version: KnownVersion;
  /** The last file version that failed to parse, and why: re-reported without re-reading. */
  #failed: { version: FileVersion; error: EngineError } | undefined;

  private constructor(file: string) {
    this.file = file;
    this.#clients = new Map();
    this.#version = undefined;
  }

  /** Reads `<dataDir>/clients.json`; a missing file is an empty registry, a corrupt one an error. */
  static open(dataDir: string): ClientStore {
    if (typeof dataDir !== 'string' || dataDir === '') {
      throw new EngineError('INVALID_ARGUMENT', 'dataDir must be a non-empty path', { field: 'dataDir' });
    }
    const store = new ClientStore(path.join(dataDir, CLIENTS_FILE));
    store.reload();
    return store;
  }

  /** Every client, in the order they were first added. */
  list(): ClientRecord[] {
    return [...this.#clients.values()].map(copyRecord);
  }

  get(id: string): ClientRecord | undefined {
    const record = this.#clients.get(id);
    return record === undefined ? undefined : copyRecord(record);
  }

  /**
   * Validates and stores `record`. Re-reads the file first so changes by other processes are kept.
   * Two processes writing at the same instant can still lose one update (last rename wins).
   */
  add(record: ClientRecord, options: AddClientOptions = {}): ClientRecord {
    const valid = validateClientRecord(record);
    this.reload();
    if (this.#clients.has(valid.id) && options.replace !== true) {
      throw new EngineError('INVALID_ARGUMENT', `client ${JSON.stringify(valid.id)} already exists in ${this.file}; remove it first or replace it`, {
        field: 'id',
      });
    }
    const next = new Map(this.#clients);
    next.set(valid.id, valid);
    this.#write(next);
    return copyRecord(valid);
  }

  /** Removes a client; NOT_FOUND if there is none with this id. */
  remove(id: string): void {
    this.reload();
    if (!this.#clients.has(id)) {
      throw new EngineError('NOT_FOUND', `client ${JSON.stringify(id)} is not in ${this.file}`, { field: 'id' });
    }
    const next = new Map(this.#clients);
    next.delete(id);
    this.#write(next);
  }

  /**
   * Re-reads the file if it was replaced since the last read. Returns whether the clients changed.
   * A corrupt file throws STORAGE_FAILED and leaves the clients as they were.
   */
  reload(): boolean {
    const current = statVersion(this.file);
    if (sameVersion(current, this.#version)) return false;
    if (current !== null && this.#failed !== undefined && sameVersion(current, this.#failed.version)) throw this.#failed.error;
    const { version, text } = readVersioned(this.file);
    let clients: ClientRecord[];
    try {
      clients = text === null ? [] : parseClientsFile(this.file, text);
    } catch (error) {
      if (version !== null && error instanceof EngineError) this.#failed = { version, error };
      throw error;
    }
    this.#failed = undefined;
    this.#version = version;
    const changed = serialize(clients) !== serialize([...this.#clients.values()]);
    if (changed) this.#clients = new Map(clients.map((c) => [c.id, c]));
    return changed;
  }

  /**
   * Polls the file every `intervalMs` and calls `onChange` after the clients changed. A corrupt file
   * keeps the last good clients and is reported to `onError` once per version of the file. The timer
   * is unref'd so it never keeps a process alive. Returns a function that stops watching.
   */
  watch(onChange: () => void, intervalMs = DEFAULT_WATCH_INTERVAL_MS, onError?: (error: EngineError) => void): () => void {
    if (!Number.isInteger(intervalMs) || intervalMs < 1) {
      throw new EngineError('INVALID_ARGUMENT', `intervalMs must be a positive integer, got ${intervalMs}`, { field: 'intervalMs' });
    }
    let reported: unknown;
    const timer = setInterval(() => {
      let changed: boolean;
      try {
        changed = this.reload();
        reported = undefined;
      } catch (error) {
        if (error !== reported) {
          reported = error;
          onError?.(error instanceof EngineError ? error : new EngineError('STORAGE_FAILED', describeError(error), { cause: error }));
        }
        return;
      }
      if (changed) onChange();
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  #write(clients: Map<string, ClientRecord>): void {
    writePrivateFileAtomic(this.file, serialize([...clients.values()]));
    this.#clients = clients;
    // Another process may rename its file over ours before we could stat ours; re-read next time.
    this.#version = undefined;
    this.#failed = undefined;
  }
}

function serialize(clients: readonly ClientRecord[]): string {
  return `${JSON.stringify({ v: CLIENTS_FILE_VERSION, clients }, null, 2)}\n`;
}

function parseClientsFile(file: string, text: string): ClientRecord[] {
  const corrupt = (reason: string, cause?: unknown): EngineError =>
    new EngineError('STORAGE_FAILED', `client registry ${file} is corrupt: ${reason}`, { cause });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw corrupt(`not valid JSON (${describeError(error)})`, error);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw corrupt('expected an object {"v":1,"clients":[...]}');
  const { v, clients } = parsed as { v?: unknown; clients?: unknown };
  if (v !== CLIENTS_FILE_VERSION) throw corrupt(`format version ${JSON.stringify(v)}, expected ${CLIENTS_FILE_VERSION}`);
  if (!Array.isArray(clients)) throw corrupt('"clients" is not an array');
  const seen = new Set<string>();
  return clients.map((entry, index) => {
    let record: ClientRecord;
    try {
      record = validateClientRecord(entry);
    } catch (error) {
      throw corrupt(`client #${index + 1}: ${describeError(error)}`, error);
    }
    if (seen.has(record.id)) throw corrupt(`client id ${JSON.stringify(record.id)} appears twice`);
    seen.add(record.id);
    return record;
  });
}

function statVersion(file: string): FileVersion | null {
  try {
    return versionOf(fs.statSync(file, { bigint: true }));
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return null;
    throw new EngineError('STORAGE_FAILED', `could not stat ${file}: ${describeError(error)}`, { cause: error });
  }
}

/** Reads through one descriptor so the version and the text belong to the same file. */
function readVersioned(file: string): { version: FileVersion | null; text: string | null } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return { version: null, text: null };
    throw new EngineError('STORAGE_FAILED', `could not open ${file}: ${describeError(error)}`, { cause: error });
  }
  try {
    const stats = fs.fstatSync(fd, { bigint: true });
    if (stats.size > BigInt(MAX_CLIENTS_FILE_BYTES)) {
      throw new EngineError('STORAGE_FAILED', `client registry ${file} is ${stats.size} bytes, over the ${MAX_CLIENTS_FILE_BYTES}-byte limit`);
    }
    return { version: versionOf(stats), text: fs.readFileSync(fd, 'utf8') };
  } catch (error) {
    if (error instanceof EngineError) throw error;
    throw new EngineError('STORAGE_FAILED', `could not read ${file}: ${describeError(error)}`, { cause: error });
  } finally {
    fs.closeSync(fd);
  }
}

function versionOf(stats: fs.BigIntStats): FileVersion {
  return { ino: stats.ino, size: stats.size, mtimeNs: stats.mtimeNs };
}

function sameVersion(a: KnownVersion, b: KnownVersion): boolean {
  if (a === undefined || b === undefined) return false;
  if (a === null || b === null) return a === b;
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

function copyRecord(record: ClientRecord): ClientRecord {
  return { ...record, publish: [...record.publish], subscribe: [...record.subscribe] };
}
