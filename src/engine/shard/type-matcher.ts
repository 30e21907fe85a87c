import type { TypePattern } from '../type-pattern.js';

/** Types remembered at most; the cache starts over when full (types repeat, so it refills fast). */
const MAX_CACHED_TYPES = 10_000;

/** A type pattern with its answers cached: every event read asks it, and types repeat. */
export class TypeMatcher {
  private readonly cache = new Map<string, boolean>();

  constructor(private readonly pattern: TypePattern) {}

  matches(type: string): boolean {
    let matches = this.cache.get(type);
    if (matches === undefined) {
      matches = this.pattern.matches(type);
      if (this.cache.size >= MAX_CACHED_TYPES) this.cache.clear();
      this.cache.set(type, matches);
    }
    return matches;
  }
}
