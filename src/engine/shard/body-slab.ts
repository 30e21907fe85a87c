/**
 * Copies event bodies into shared slabs instead of one buffer each: a separate small ArrayBuffer per
 * event cost more (allocation and collection) than storing the event. A slab is freed once every
 * body copied into it is gone, so slabs are kept small: a body that outlives its neighbours pins at
 * most SLAB_BYTES. Bodies larger than a quarter slab get their own buffer.
 *
 * A copy is returned as a position, not a view: `copy` answers where the body starts and
 * `lastBuffer` holds the buffer it went into, so copying makes no object per body.
 */
const SLAB_BYTES = 16 * 1024;

export class BodySlab {
  private slab = new Uint8Array(0);
  private used = 0;
  /** The buffer the last copy went into. */
  lastBuffer: Uint8Array = this.slab;

  /** Copy bytes [start, end) of `source`; returns where the copy starts in `lastBuffer`. */
  copy(source: Uint8Array, start: number, end: number): number {
    const length = end - start;
    if (length > SLAB_BYTES / 4) {
      this.lastBuffer = source.slice(start, end);
      return 0;
    }
    if (this.used + length > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES); // not zero-filled: only copied bodies are read back
      this.used = 0;
    }
    const at = this.used;
    this.slab.set(start === 0 && end === source.length ? source : source.subarray(start, end), at);
    this.used = at + length;
    this.lastBuffer = this.slab;
    return at;
  }
}
