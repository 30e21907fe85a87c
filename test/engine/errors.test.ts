import { describe, expect, it } from 'vitest';
import { ENGINE_ERROR_CODES, EngineError } from '../../src/engine/errors.js';

describe('EngineError', () => {
  it('carries code, message, field and a retryable default by code', () => {
    const invalid = new EngineError('INVALID_EVENT', 'type must be a string', { field: 'type' });
    expect(invalid).toBeInstanceOf(Error);
    expect(invalid.name).toBe('EngineError');
    expect(invalid.code).toBe('INVALID_EVENT');
    expect(invalid.field).toBe('type');
    expect(invalid.retryable).toBe(false);
    expect(new EngineError('OVERLOADED', 'queue full').retryable).toBe(true);
    expect(new EngineError('SHARD_UNAVAILABLE', 'restarting').retryable).toBe(true);
    expect(new EngineError('OVERLOADED', 'queue full', { retryable: false }).retryable).toBe(false);
  });

  it('keeps the cause locally but not in JSON', () => {
    const cause = new Error('disk full');
    const error = new EngineError('STORAGE_FAILED', 'append failed', { cause });
    expect(error.cause).toBe(cause);
    expect(error.toJSON()).toEqual({ code: 'STORAGE_FAILED', message: 'append failed', retryable: false });
  });

  it('round-trips every code through JSON text and structured cloning', () => {
    for (const code of ENGINE_ERROR_CODES) {
      const original = new EngineError(code, `failure ${code}`, { field: 'f', retryable: code === 'INTERNAL' });
      const viaText = EngineError.fromJSON(JSON.parse(JSON.stringify(original)));
      const viaClone = EngineError.fromJSON(structuredClone(original.toJSON()));
      for (const copy of [viaText, viaClone]) {
        expect(copy).toBeInstanceOf(EngineError);
        expect(copy.toJSON()).toEqual({ code, message: `failure ${code}`, field: 'f', retryable: code === 'INTERNAL' });
      }
    }
  });

  it('omits field from JSON when there is none', () => {
    expect('field' in new EngineError('NOT_FOUND', 'no such subscription').toJSON()).toBe(false);
  });

  it('turns malformed JSON into an INTERNAL error instead of throwing', () => {
    expect(EngineError.fromJSON(null).code).toBe('INTERNAL');
    expect(EngineError.fromJSON('boom').message).toContain('malformed');
    const unknown = EngineError.fromJSON({ code: 'NO_SUCH_CODE', message: 'what', retryable: true });
    expect(unknown.code).toBe('INTERNAL');
    expect(unknown.message).toContain('NO_SUCH_CODE');
    expect(unknown.message).toContain('what');
    const noRetryable = EngineError.fromJSON({ code: 'OVERLOADED', message: 'busy' });
    expect(noRetryable.retryable).toBe(true);
  });
});
