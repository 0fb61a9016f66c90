/** Float samples (−1..1) to signed 24-bit integers, as the WAV and FLAC writers store them. */
export const PCM24_MAX = 8_388_607;
export const PCM24_MIN = -8_388_608;
const SCALE = 8_388_608;

/** Rounds to the nearest 24-bit step and clips to the 24-bit range. */
export function toPcm24(x: number): number {
  const v = Math.round(x * SCALE);
  return v > PCM24_MAX ? PCM24_MAX : v < PCM24_MIN ? PCM24_MIN : v;
}

/** The float a 24-bit sample stands for (the inverse of toPcm24 within its range). */
export const fromPcm24 = (v: number): number => v / SCALE;

/** Collects encoded byte pieces and joins them once. */
export class ByteSink {
  private parts: Uint8Array[] = [];
  size = 0;
  push(bytes: Uint8Array, copy = true): void {
    if (bytes.length === 0) return;
    this.parts.push(copy ? bytes.slice() : bytes);
    this.size += bytes.length;
  }
  concat(prefix?: Uint8Array): Uint8Array {
    const out = new Uint8Array((prefix?.length ?? 0) + this.size);
    let o = 0;
    if (prefix) {
      out.set(prefix, 0);
      o = prefix.length;
    }
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    this.parts = [];
    this.size = 0;
    return out;
  }
}
