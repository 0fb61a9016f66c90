/**
 * Decoded stereo PCM waiting to be read: blocks as a decoder produced them, handed out in whatever
 * sizes the reader asks for. The one buffer between every streaming decoder and the chunk pipeline.
 */
export class PcmQueue {
  private readonly pending: Float32Array[][] = [];
  private offset = 0;

  /** Queues one block (left and right of equal length); empty blocks are dropped. */
  push(block: Float32Array[]): void {
    if (block[0]!.length > 0) this.pending.push(block);
  }

  get empty(): boolean {
    return this.pending.length === 0;
  }

  /** Copies up to `count` queued samples per channel into dst[c][at..]; returns how many. */
  take(dst: readonly Float32Array[], at: number, count: number): number {
    let written = 0;
    while (written < count) {
      const head = this.pending[0];
      if (!head) break;
      const n = Math.min(head[0]!.length - this.offset, count - written);
      for (let c = 0; c < 2; c++) dst[c]!.set(head[c]!.subarray(this.offset, this.offset + n), at + written);
      written += n;
      this.offset += n;
      if (this.offset === head[0]!.length) {
        this.pending.shift();
        this.offset = 0;
      }
    }
    return written;
  }
}
