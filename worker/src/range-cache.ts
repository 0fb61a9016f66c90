/**
 * The range outputs a worker stored last, kept in memory up to a byte budget (RANGE_CACHE_MB), so
 * the encoding units running beside its ranges read them without a round trip through the store
 * (issue 23: on one worker that round trip was most of a split's cost). The store stays the record:
 * a unit reads from it whatever is not here, so what the cache drops or never had costs only time.
 * Oldest first out; a song's entries go when its outputs are removed.
 */
export class RangeCache {
  private readonly entries = new Map<string, Uint8Array>();
  private bytes = 0;

  constructor(private readonly budgetBytes: number) {}

  private static key(hash: string, index: number): string {
    return `${hash}#${index}`;
  }

  put(hash: string, index: number, bytes: Uint8Array): void {
    if (bytes.length > this.budgetBytes) return;
    this.delete(RangeCache.key(hash, index));
    this.entries.set(RangeCache.key(hash, index), bytes);
    this.bytes += bytes.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.budgetBytes) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
  }

  /** `length` bytes at `offset` of range `index`'s stored output, or null when it is not kept. */
  part(hash: string, index: number, offset: number, length: number): Uint8Array | null {
    const b = this.entries.get(RangeCache.key(hash, index));
    return b && offset + length <= b.length ? b.subarray(offset, offset + length) : null;
  }

  dropSong(hash: string): void {
    for (const k of [...this.entries.keys()]) if (k.startsWith(`${hash}#`)) this.delete(k);
  }

  get size(): number {
    return this.bytes;
  }

  private delete(k: string): void {
    const v = this.entries.get(k);
    if (!v) return;
    this.entries.delete(k);
    this.bytes -= v.length;
  }
}
