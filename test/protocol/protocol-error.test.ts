import { describe, expect, it } from 'vitest';
import { ENGINE_ERROR_CODES } from '../../src/engine/errors.js';
import {
  ENGINE_ERROR_CODES_ON_WIRE,
  ERROR_CODES,
  PROTOCOL_ERROR_CODES,
  ProtocolError,
  decodeServerFrame,
  encodeFrame,
  errorFrame,
  isProtocolError,
} from '../../src/protocol/index.js';

describe('ProtocolError', () => {
  it('carries code, field, requestId and retryable, and a body without internals', () => {
    const error = new ProtocolError('LIMIT_EXCEEDED', 'too many subscriptions', { field: 'name', requestId: 12, cause: new Error('inner') });
    expect(error).toBeInstanceOf(Error);
    expect(isProtocolError(error)).toBe(true);
    expect(isProtocolError(new Error('x'))).toBe(false);
    expect(error).toMatchObject({ name: 'ProtocolError', code: 'LIMIT_EXCEEDED', field: 'name', requestId: 12, retryable: false });
    expect(error.toBody()).toStrictEqual({ code: 'LIMIT_EXCEEDED', message: 'too many subscriptions', field: 'name', retryable: false });
    expect(new ProtocolError('AUTH_TIMEOUT', 'slow').toBody()).toStrictEqual({ code: 'AUTH_TIMEOUT', message: 'slow', retryable: false });
    expect(new ProtocolError('LIMIT_EXCEEDED', 'busy', { retryable: true }).retryable).toBe(true);
  });

  it('travels in an error frame answering the request id', () => {
    const body = new ProtocolError('UNSUPPORTED_VERSION', 'version 2 is not offered; offered: 1', { field: 'version', requestId: 0 }).toBody();
    const frame = errorFrame(body, 0);
    expect(frame).toStrictEqual({ t: 'error', id: 0, code: 'UNSUPPORTED_VERSION', message: 'version 2 is not offered; offered: 1', field: 'version', retryable: false });
    expect(decodeServerFrame(encodeFrame(frame))).toStrictEqual(frame);
    expect(errorFrame({ code: 'INTERNAL', message: 'm', retryable: false })).toStrictEqual({ t: 'error', code: 'INTERNAL', message: 'm', retryable: false });
  });

  it('knows every engine error code, and the protocol codes of the spec', () => {
    expect([...ENGINE_ERROR_CODES_ON_WIRE].sort()).toEqual([...ENGINE_ERROR_CODES].sort());
    expect([...PROTOCOL_ERROR_CODES].sort()).toEqual(['AUTH_FAILED', 'AUTH_TIMEOUT', 'FRAME_TOO_LARGE', 'LIMIT_EXCEEDED', 'PROTOCOL_ERROR', 'UNSUPPORTED_VERSION']);
    expect(ERROR_CODES).toHaveLength(ENGINE_ERROR_CODES.length + PROTOCOL_ERROR_CODES.length);
    // An engine error's JSON is an ErrorBody the server frame accepts.
    for (const code of ENGINE_ERROR_CODES) {
      expect(decodeServerFrame(encodeFrame(errorFrame({ code, message: 'x', retryable: false }, 1))).t).toBe('error');
    }
  });
});
