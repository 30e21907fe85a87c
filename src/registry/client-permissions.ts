/**
 * What one client may publish and subscribe to, from its ClientRecord. Publishing checks one concrete
 * type against the publish patterns. Subscribing checks a whole pattern: it is allowed only if every
 * type it can match is inside one allowed subscribe pattern, so a wildcard cannot widen access.
 */
import { EngineError } from '../engine/errors.js';
import { TypePattern } from '../engine/type-pattern.js';
import type { ClientRecord } from './client-record.js';

const SINGLE = '*';
const REST = '**';

export class ClientPermissions {
  readonly clientId: string;
  readonly #publish: readonly TypePattern[];
  readonly #subscribe: readonly TypePattern[];

  constructor(record: Pick<ClientRecord, 'id' | 'publish' | 'subscribe'>) {
    this.clientId = record.id;
    this.#publish = record.publish.map((p) => new TypePattern(p));
    this.#subscribe = record.subscribe.map((p) => new TypePattern(p));
  }

  /** Whether the client may publish an event of this (already validated) type. */
  canPublish(type: string): boolean {
    return this.#publish.some((allowed) => allowed.matches(type));
  }

  /** Whether the client may subscribe with `pattern`; an invalid pattern throws INVALID_ARGUMENT. */
  canSubscribe(pattern: string | TypePattern): boolean {
    const requested = typeof pattern === 'string' ? new TypePattern(pattern) : pattern;
    return this.#subscribe.some((allowed) => patternCovers(allowed, requested));
  }

  /** Throws FORBIDDEN unless canPublish(type). */
  checkPublish(type: string): void {
    if (!this.canPublish(type)) {
      throw new EngineError('FORBIDDEN', `client ${this.clientId} may not publish ${JSON.stringify(type)}`, { field: 'type' });
    }
  }

  /** Throws FORBIDDEN unless canSubscribe(pattern). */
  checkSubscribe(pattern: string | TypePattern): void {
    if (!this.canSubscribe(pattern)) {
      throw new EngineError('FORBIDDEN', `client ${this.clientId} may not subscribe to ${JSON.stringify(String(pattern))}`, {
        field: 'pattern',
      });
    }
  }
}

/**
 * Whether every type `requested` can match is also matched by `allowed`, compared segment by segment:
 * a literal is covered by the same literal or '*'; '*' by '*'; '**' (one or more segments) only by
 * '**'; and an allowed '**' covers whatever non-empty rest the requested pattern has. Exact for one
 * allowed pattern; a request that only the union of several allowed patterns covers is refused.
 */
export function patternCovers(allowed: TypePattern, requested: TypePattern): boolean {
  const a = allowed.segments;
  const r = requested.segments;
  for (let i = 0; i < a.length; i++) {
    const segment = a[i]!;
    // Every requested segment matches at least one type segment, so any non-empty rest fits '**'.
    if (segment === REST) return i < r.length;
    if (i >= r.length) return false;
    const wanted = r[i]!;
    if (wanted === REST) return false;
    if (segment === SINGLE) continue;
    if (wanted !== segment) return false;
  }
  return r.length === a.length;
}
