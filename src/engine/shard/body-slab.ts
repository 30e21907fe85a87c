/**
 * Copies event bodies into shared slabs instead of one buffer each: a separate small ArrayBuffer per
 * event cost more (allocation and collection) than storing the event. A slab is freed once every
 * body copied into it is gone, so slabs are kept small: a body that outlives its neighbours pins at
 * most SLAB_BYTES. Bodies larger than a quarter slab get their own buffer.
 */
const SLAB_BYTES = 16 * 1024;

export class BodySlab {
  private slab = new Uint8Array(0);
  private used = 0;

  copy(body: Uint8Array): Uint8Array {
    const length = body.length;
    if (length > SLAB_BYTES / 4) return new Uint8Array(body);
    if (this.used + length > this.slab.length) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.used = 0;
    }
    const copy = this.slab.subarray(this.used, this.used + length);
    copy.set(body);
    this.used += length;
    return copy;
  }
}
