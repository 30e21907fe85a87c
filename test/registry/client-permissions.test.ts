import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import { TypePattern } from '../../src/engine/type-pattern.js';
import { ClientPermissions, patternCovers } from '../../src/registry/client-permissions.js';

function permissions(publish: string[], subscribe: string[]): ClientPermissions {
  return new ClientPermissions({ id: 'billing', publish, subscribe });
}

function forbidden(fn: () => void): EngineError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).code).toBe('FORBIDDEN');
    return error as EngineError;
  }
  throw new Error('expected FORBIDDEN');
}

describe('ClientPermissions', () => {
  it("with subscribe orders/*: orders/created and orders/* are allowed, orders/** and ** are not", () => {
    const p = permissions([], ['orders/*']);
    expect(p.canSubscribe('orders/created')).toBe(true);
    expect(p.canSubscribe('orders/*')).toBe(true);
    expect(p.canSubscribe('orders/**')).toBe(false);
    expect(p.canSubscribe('**')).toBe(false);
    expect(p.canSubscribe('orders')).toBe(false);
    expect(p.canSubscribe('orders/eu/created')).toBe(false);
    expect(p.canSubscribe('*/created')).toBe(false);
    expect(p.canSubscribe('payments/created')).toBe(false);
  });

  it('with subscribe orders/**: deeper literals and single wildcards are allowed, the parent is not', () => {
    const p = permissions([], ['orders/**']);
    expect(p.canSubscribe('orders/a/b')).toBe(true);
    expect(p.canSubscribe('orders/*')).toBe(true);
    expect(p.canSubscribe('orders/**')).toBe(true);
    expect(p.canSubscribe('orders/*/b/**')).toBe(true);
    expect(p.canSubscribe('orders')).toBe(false);
    expect(p.canSubscribe('*/a')).toBe(false);
    expect(p.canSubscribe('**')).toBe(false);
  });

  it('with subscribe **: everything is allowed', () => {
    const p = permissions([], ['**']);
    for (const pattern of ['a', '*', '**', 'a/*/c/**']) expect(p.canSubscribe(pattern)).toBe(true);
  });

  it('allows a subscription inside any one allowed pattern, and none with no subscribe patterns', () => {
    const p = permissions([], ['orders/*', 'payments/**']);
    expect(p.canSubscribe('payments/x/y')).toBe(true);
    expect(p.canSubscribe(new TypePattern('orders/*'))).toBe(true);
    expect(permissions(['**'], []).canSubscribe('a')).toBe(false);
  });

  it('checks publishing a concrete type against the publish patterns only', () => {
    const p = permissions(['orders/*', 'audit/**', 'ping'], ['**']);
    expect(p.canPublish('orders/created')).toBe(true);
    expect(p.canPublish('audit/a/b')).toBe(true);
    expect(p.canPublish('ping')).toBe(true);
    expect(p.canPublish('orders/eu/created')).toBe(false);
    expect(p.canPublish('orders')).toBe(false);
    expect(p.canPublish('pings')).toBe(false);
    expect(permissions([], ['**']).canPublish('anything')).toBe(false);
  });

  it('throws FORBIDDEN naming the client and the type or pattern', () => {
    const p = permissions(['orders/*'], ['orders/*']);
    p.checkPublish('orders/created');
    p.checkSubscribe('orders/*');
    const publish = forbidden(() => p.checkPublish('payments/created'));
    expect(publish.message).toBe('client billing may not publish "payments/created"');
    expect(publish.field).toBe('type');
    const subscribe = forbidden(() => p.checkSubscribe('orders/**'));
    expect(subscribe.message).toBe('client billing may not subscribe to "orders/**"');
    expect(subscribe.field).toBe('pattern');
  });

  it('rejects an invalid requested pattern as INVALID_ARGUMENT, not as a refusal', () => {
    expect(() => permissions([], ['**']).canSubscribe('orders/**/x')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'pattern' }),
    );
  });
});

/**
 * patternCovers(A, P) must equal "every type P matches, A matches". Checked exhaustively over small
 * patterns and every type of up to four segments drawn from the patterns' literals plus one other.
 */
describe('patternCovers', () => {
  const segments = ['a', 'b', '*'];
  const patterns: string[] = [];
  const grow = (prefix: string[]): void => {
    if (prefix.length > 0) patterns.push(prefix.join('/'));
    if (prefix.length > 0) patterns.push([...prefix, '**'].join('/'));
    if (prefix.length < 3) for (const s of segments) grow([...prefix, s]);
  };
  grow([]);
  patterns.push('**');
  const types: string[] = [];
  const growType = (prefix: string[]): void => {
    if (prefix.length > 0) types.push(prefix.join('/'));
    if (prefix.length < 4) for (const s of ['a', 'b', 'c']) growType([...prefix, s]);
  };
  growType([]);

  it('agrees with matching on every type, for every pair of small patterns', () => {
    const compiled = patterns.map((p) => new TypePattern(p));
    const matched = compiled.map((p) => types.filter((t) => p.matches(t)));
    let covering = 0;
    for (let i = 0; i < compiled.length; i++) {
      for (let j = 0; j < compiled.length; j++) {
        const expected = matched[j]!.every((t) => compiled[i]!.matches(t));
        expect(patternCovers(compiled[i]!, compiled[j]!), `${patterns[i]} covers ${patterns[j]}`).toBe(expected);
        if (expected) covering++;
      }
    }
    // Both answers occur often, so the comparison is not trivially one-sided.
    expect(patterns.length).toBeGreaterThan(70);
    expect(covering).toBeGreaterThan(patterns.length);
    expect(covering).toBeLessThan(patterns.length * patterns.length - patterns.length);
  });
});
