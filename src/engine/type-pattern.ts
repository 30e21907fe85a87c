import { EngineError } from './errors.js';
import { isTypeSegmentChar, MAX_EVENT_TYPE_BYTES } from './event.js';

const SINGLE = '*';
const REST = '**';

/**
 * A subscription's event type pattern: segments separated by '/', each a literal type segment,
 * '*' (exactly one segment) or, only as the last segment, '**' (one or more remaining segments).
 * `orders/*` matches `orders/created` but not `orders` or `orders/eu/created`;
 * `orders/**` matches `orders/created` and `orders/eu/created` but not `orders` itself.
 *
 * `matches` is on the delivery path, so it walks the type in place instead of splitting it.
 * It expects a type that passed validateEventType (the engine validates at publish); for other
 * strings it still never matches a type with an empty segment.
 */
export class TypePattern {
  readonly source: string;
  readonly segments: readonly string[];
  readonly #literal: boolean;

  constructor(pattern: string) {
    this.segments = parsePattern(pattern);
    this.source = pattern;
    this.#literal = this.segments.every((segment) => segment !== SINGLE && segment !== REST);
  }

  /** True when the pattern has no wildcard: it matches exactly one type, its source. */
  get isLiteral(): boolean {
    return this.#literal;
  }

  matches(type: string): boolean {
    if (this.#literal) return type === this.source;
    const segments = this.segments;
    const length = type.length;
    let position = 0;
    for (let i = 0; i < segments.length; i++) {
      if (position > length) return false; // the type has fewer segments than the pattern
      const segment = segments[i]!;
      if (segment === REST) {
        // The rest must be one or more non-empty segments.
        return (
          position < length &&
          type.charCodeAt(position) !== 0x2f &&
          type.charCodeAt(length - 1) !== 0x2f &&
          !type.includes('//', position)
        );
      }
      let end = type.indexOf('/', position);
      if (end === -1) end = length;
      if (segment === SINGLE) {
        if (end === position) return false;
      } else if (end - position !== segment.length || !type.startsWith(segment, position)) {
        return false;
      }
      position = end + 1;
    }
    return position === length + 1; // every segment of the type consumed, and no more
  }

  toString(): string {
    return this.source;
  }
}

function invalidPattern(pattern: string, reason: string): EngineError {
  return new EngineError('INVALID_ARGUMENT', `pattern ${JSON.stringify(pattern)} ${reason}`, { field: 'pattern' });
}

function parsePattern(pattern: unknown): string[] {
  if (typeof pattern !== 'string') {
    throw new EngineError('INVALID_ARGUMENT', `pattern must be a string, got ${pattern === null ? 'null' : typeof pattern}`, {
      field: 'pattern',
    });
  }
  if (pattern.length === 0) throw invalidPattern(pattern, 'must not be empty');
  // A wildcard matches at least one character, so no pattern longer than a type can match anything.
  if (pattern.length > MAX_EVENT_TYPE_BYTES) throw invalidPattern(pattern, `must be at most ${MAX_EVENT_TYPE_BYTES} bytes`);
  const segments = pattern.split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.length === 0) throw invalidPattern(pattern, `has an empty segment (segment ${i + 1})`);
    if (segment === SINGLE) continue;
    if (segment === REST) {
      if (i !== segments.length - 1) throw invalidPattern(pattern, "may use '**' only as its last segment");
      continue;
    }
    for (let c = 0; c < segment.length; c++) {
      const code = segment.charCodeAt(c);
      if (code === 0x2a) {
        throw invalidPattern(pattern, `mixes '*' with other characters in segment ${JSON.stringify(segment)}; use '*' or '**' as a whole segment`);
      }
      if (!isTypeSegmentChar(code)) {
        throw invalidPattern(pattern, `has the character ${JSON.stringify(segment[c])}; segments use only A-Z a-z 0-9 . _ - or are '*' / '**'`);
      }
    }
  }
  return segments;
}
