/**
 * Small combinators that check the shape of a decoded msgpack value and rebuild it as a fresh,
 * typed value holding only known fields. A failure throws ShapeError with the path of the offending
 * field; the path is assembled while the error unwinds, so the success path builds no strings.
 */

/** Checks a value and returns it (rebuilt where it is a map or array), or throws ShapeError. */
export type Check<T> = (value: unknown) => T;

export class ShapeError extends Error {
  /** Map keys and array indexes from the frame's root down to the offending value. */
  readonly path: Array<string | number>;

  constructor(message: string, path: Array<string | number> = []) {
    super(message);
    this.name = 'ShapeError';
    this.path = path;
  }
}

/** `events[2].payload` from ['events', 2, 'payload']. */
export function formatPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

/** Run `check` on a child value, prefixing `segment` to the path of any failure. */
function within<T>(segment: string | number, check: Check<T>, value: unknown): T {
  try {
    return check(value);
  } catch (error) {
    if (error instanceof ShapeError) error.path.unshift(segment);
    throw error;
  }
}

/** A short description of a decoded value, for messages (never the value itself: it may be large). */
export function describe(value: unknown): string {
  if (value === null) return 'nil';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bin';
  if (typeof value === 'object') {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) return 'a map';
    return (value as object).constructor?.name ?? 'an object';
  }
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a float';
  return `a ${typeof value}`;
}

function wrong(expected: string, value: unknown): ShapeError {
  return new ShapeError(`must be ${expected}, got ${describe(value)}`);
}

export function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export const str: Check<string> = (value) => {
  if (typeof value !== 'string') throw wrong('a string', value);
  return value;
};

export const bool: Check<boolean> = (value) => {
  if (typeof value !== 'boolean') throw wrong('a boolean', value);
  return value;
};

/** Any number: for options whose range the engine checks (and names in its own error). */
export const num: Check<number> = (value) => {
  if (typeof value !== 'number') throw wrong('a number', value);
  return value;
};

/** A safe non-negative integer: ids, offsets, shards, counts, times. */
export const uint: Check<number> = (value) => {
  if (!isUint(value)) throw wrong('a non-negative integer', value);
  return value;
};

/**
 * msgpack bin. Node's msgpackr yields Buffer views of the frame; they become plain Uint8Array views
 * of the same bytes (no copy), so callers see one type in Node and browsers alike.
 */
export const bin: Check<Uint8Array> = (value) => {
  if (!(value instanceof Uint8Array)) throw wrong('bin', value);
  return value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
};

export function binOfLength(length: number): Check<Uint8Array> {
  return (value) => {
    const bytes = bin(value);
    if (bytes.byteLength !== length) throw new ShapeError(`must be ${length} bytes of bin, got ${bytes.byteLength}`);
    return bytes;
  };
}

export function literal<const L extends string>(expected: L): Check<L> {
  return (value) => {
    if (value !== expected) throw new ShapeError(`must be ${JSON.stringify(expected)}, got ${describe(value)}`);
    return expected;
  };
}

export function oneOf<const L extends string>(allowed: readonly L[]): Check<L> {
  const set: ReadonlySet<string> = new Set(allowed);
  return (value) => {
    if (typeof value !== 'string' || !set.has(value)) {
      const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : describe(value);
      throw new ShapeError(`must be one of ${allowed.join(', ')}, got ${shown}`);
    }
    return value as L;
  };
}

export function nullable<T>(check: Check<T>): Check<T | null> {
  return (value) => (value === null ? null : check(value));
}

export function arrayOf<T>(check: Check<T>): Check<T[]> {
  return (value) => {
    if (!Array.isArray(value)) throw wrong('an array', value);
    const out = new Array<T>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = within(i, check, value[i]);
    return out;
  };
}

/** A fixed-length array whose entries all pass `check` (a tuple such as [shard, offset]). */
export function tupleOf<T>(length: number, check: Check<T>): Check<T[]> {
  const entries = arrayOf(check);
  return (value) => {
    if (Array.isArray(value) && value.length !== length) {
      throw new ShapeError(`must be an array of ${length} entries, got ${value.length}`);
    }
    return entries(value);
  };
}

/** A map of string values, any keys (event headers). */
export const stringMap: Check<Record<string, string>> = (value) => {
  if (!isPlainMap(value)) throw wrong('a map of strings', value);
  const out: Record<string, string> = {};
  for (const key of Object.keys(value)) {
    // Assigning "__proto__" would replace the prototype of `out` instead of adding an entry.
    if (key === '__proto__') throw new ShapeError('must not have the key "__proto__"', [key]);
    out[key] = within(key, str, value[key]);
  }
  return out;
};

type OptionalKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T];
type RequiredKeys<T> = Exclude<keyof T, OptionalKeys<T>>;

/** Checks for each required field of T, typed against T so schema and type cannot drift apart. */
export type RequiredChecks<T> = { [K in RequiredKeys<T>]-?: Check<T[K]> };
export type OptionalChecks<T> = { [K in OptionalKeys<T>]-?: Check<Exclude<T[K], undefined>> };

/**
 * A msgpack map with exactly these fields: every required one present, optional ones checked when
 * present, any other key refused. A field whose value is `undefined` (msgpackr's extension for it)
 * counts as absent.
 */
export function object<T>(required: RequiredChecks<T>, optional: OptionalChecks<T>): Check<T> {
  const requiredEntries = Object.entries(required) as Array<[string, Check<unknown>]>;
  const optionalEntries = Object.entries(optional) as Array<[string, Check<unknown>]>;
  const known: ReadonlySet<string> = new Set([...requiredEntries, ...optionalEntries].map(([key]) => key));
  return (value) => {
    if (!isPlainMap(value)) throw wrong('a map', value);
    for (const key in value) {
      if (!known.has(key)) {
        throw new ShapeError(`is not a field here; expected ${[...known].join(', ')}`, [key]);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [key, check] of requiredEntries) {
      const field = value[key];
      if (field === undefined) throw new ShapeError('is required', [key]);
      out[key] = within(key, check, field);
    }
    for (const [key, check] of optionalEntries) {
      const field = value[key];
      if (field !== undefined) out[key] = within(key, check, field);
    }
    return out as T;
  };
}
