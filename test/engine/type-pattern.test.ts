import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import { TypePattern } from '../../src/engine/type-pattern.js';
import { Prng } from '../helpers/prng.js';

const TYPES = [
  'orders',
  'orders/created',
  'orders/eu',
  'orders/eu/created',
  'orders/eu/created/v2',
  'ordersx/created',
  'order/created',
  'payments/created',
  'payments/eu/created',
  'x',
];

function matching(pattern: string): string[] {
  const compiled = new TypePattern(pattern);
  return TYPES.filter((type) => compiled.matches(type));
}

describe('TypePattern.matches', () => {
  it('a literal pattern matches only itself', () => {
    expect(matching('orders/created')).toEqual(['orders/created']);
    expect(matching('orders')).toEqual(['orders']);
    expect(new TypePattern('orders/created').isLiteral).toBe(true);
  });

  it("'*' matches exactly one segment", () => {
    expect(matching('orders/*')).toEqual(['orders/created', 'orders/eu']);
    expect(matching('*')).toEqual(['orders', 'x']);
    expect(matching('*/created')).toEqual(['orders/created', 'ordersx/created', 'order/created', 'payments/created']);
    expect(matching('*/eu/*')).toEqual(['orders/eu/created', 'payments/eu/created']);
    expect(matching('orders/*/created')).toEqual(['orders/eu/created']);
    expect(matching('*/*/*/*')).toEqual(['orders/eu/created/v2']);
    expect(new TypePattern('orders/*').isLiteral).toBe(false);
  });

  it("'**' matches one or more remaining segments", () => {
    expect(matching('orders/**')).toEqual(['orders/created', 'orders/eu', 'orders/eu/created', 'orders/eu/created/v2']);
    expect(matching('**')).toEqual(TYPES);
    expect(matching('*/eu/**')).toEqual(['orders/eu/created', 'orders/eu/created/v2', 'payments/eu/created']);
    expect(matching('orders/eu/created/**')).toEqual(['orders/eu/created/v2']);
    expect(new TypePattern('orders/**').isLiteral).toBe(false);
  });

  it('does not match strings with empty segments', () => {
    const any = new TypePattern('**');
    const nested = new TypePattern('orders/**');
    const single = new TypePattern('orders/*');
    for (const bad of ['', 'orders/', 'orders//x', 'orders/x/', '/orders']) {
      expect(any.matches(bad) || nested.matches(bad) || single.matches(bad)).toBe(false);
    }
  });

  it('keeps its source and segments', () => {
    const pattern = new TypePattern('orders/*/created');
    expect(pattern.source).toBe('orders/*/created');
    expect(pattern.segments).toEqual(['orders', '*', 'created']);
    expect(String(pattern)).toBe('orders/*/created');
  });
});

describe('TypePattern construction', () => {
  it.each([
    ['', /must not be empty/],
    ['orders/', /empty segment \(segment 2\)/],
    ['/orders', /empty segment \(segment 1\)/],
    ['orders//x', /empty segment/],
    ['orders/**/created', /'\*\*' only as its last segment/],
    ['**/created', /'\*\*' only as its last segment/],
    ['orders/cre*', /mixes '\*' with other characters/],
    ['orders/***', /mixes '\*'/],
    ['orders/a b', /character " "/],
    ['orders/#', /character "#"/],
    ['x'.repeat(256), /at most 255 bytes/],
  ])('refuses %j', (source, message) => {
    let caught: unknown;
    try {
      new TypePattern(source);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(EngineError);
    expect((caught as EngineError).code).toBe('INVALID_ARGUMENT');
    expect((caught as EngineError).field).toBe('pattern');
    expect((caught as EngineError).message).toMatch(message);
  });

  it('refuses a non-string', () => {
    expect(() => new TypePattern(undefined as unknown as string)).toThrow(/pattern must be a string, got undefined/);
  });
});

describe('TypePattern against a reference matcher', () => {
  /** Straightforward split-and-compare semantics, for cross-checking the in-place walk. */
  function referenceMatch(pattern: string, type: string): boolean {
    const wanted = pattern.split('/');
    const got = type.split('/');
    const rest = wanted[wanted.length - 1] === '**';
    const fixed = rest ? wanted.slice(0, -1) : wanted;
    if (rest ? got.length <= fixed.length : got.length !== fixed.length) return false;
    return fixed.every((segment, i) => segment === '*' || segment === got[i]);
  }

  it('agrees on 20k random valid types and patterns', () => {
    const prng = new Prng(20240611);
    const words = ['a', 'b', 'ab', 'ba', 'a.b', 'x-1'];
    for (let i = 0; i < 20_000; i++) {
      const type = Array.from({ length: prng.int(1, 4) }, () => prng.pick(words)).join('/');
      const segments = Array.from({ length: prng.int(1, 4) }, () => prng.pick([...words, '*', '*']));
      if (prng.next() < 0.3) segments[segments.length - 1] = '**';
      const pattern = segments.join('/');
      const actual = new TypePattern(pattern).matches(type);
      if (actual !== referenceMatch(pattern, type)) {
        throw new Error(`seed ${prng.seed}: ${pattern} vs ${type} gave ${actual}`);
      }
    }
  });
});
