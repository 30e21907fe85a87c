import { expect } from 'vitest';
import { StorageError } from '../../native-free-storage/index.js';

type StorageErrorCode = StorageError['code'];

/**
 * Runs `action` (sync throw or async rejection both count) and asserts it failed with a
 * StorageError carrying `code`. Returns the error for further checks on message/cause.
 */
export async function expectStorageError(action: () => unknown, code: StorageErrorCode): Promise<StorageError> {
  let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await action() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  if (outcome.ok) {
    throw new Error(`expected StorageError ${code}, but the call succeeded with ${describe(outcome.value)}`);
  }
  const { error } = outcome;
  expect(error, `expected a StorageError ${code}, got ${describe(error)}`).toBeInstanceOf(StorageError);
  expect((error as StorageError).code, `error message: ${(error as Error).message}`).toBe(code);
  return error as StorageError;
}

/** Same as expectStorageError for synchronous calls such as read(). */
export function expectStorageErrorSync(action: () => unknown, code: StorageErrorCode): StorageError {
  let thrown: unknown;
  let threw = false;
  try {
    action();
  } catch (error) {
    thrown = error;
    threw = true;
  }
  expect(threw, `expected StorageError ${code} to be thrown`).toBe(true);
  expect(thrown, `expected a StorageError ${code}, got ${describe(thrown)}`).toBeInstanceOf(StorageError);
  expect((thrown as StorageError).code, `error message: ${(thrown as Error).message}`).toBe(code);
  return thrown as StorageError;
}

/** The `code` of the original error a StorageError wraps (e.g. 'ENOSPC'), if any. */
export function causeCode(error: StorageError): string | undefined {
  const cause = error.cause as { code?: unknown } | undefined;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
