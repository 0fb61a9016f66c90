import { ByteSink, toPcm24 } from './pcm24.ts';
import type { StemEncoder } from './stem-encoder.ts';

/**
 * A 24-bit FLAC encoder, pure TypeScript, fed chunk by chunk. Each block of 4,096 samples is one
 * frame; each channel (or the side channel of a left/side pair, whichever is smaller) is a
 * subframe coded with the best of the fixed predictors of order 0–4 and partitioned Rice codes
 * (RICE2, 5-bit parameters), or verbatim when that is smaller. No LPC: somewhat larger than
 * libFLAC's output (docs/separation.md, "FLAC: ours against libFLAC", `npm run bench:flac`), and
 * lossless and spec-conformant (RFC 9639). STREAMINFO carries
 * the total sample count; its MD5 is left 0 ("not computed"), which decoders accept.
 */
export const FLAC_BLOCK = 4096;
const BPS = 24;

class BitWriter {
  private buf: Uint8Array;
  private pos = 0;
  private acc = 0;
  private bits = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }
  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + extra));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  /** Writes the low `n` bits of the non-negative `value` (n ≤ 32). */
  write(value: number, n: number): void {
    if (n > 24) {
      this.write(Math.floor(value / 0x1000000), n - 24);
      this.write(value % 0x1000000, 24);
      return;
    }
    // fewer than 8 bits pend between calls, so acc stays below 2^31
    this.acc = (this.acc << n) | (value & ((1 << n) - 1));
    this.bits += n;
    if (this.bits >= 8) {
      this.ensure(4);
      while (this.bits >= 8) {
        this.bits -= 8;
        this.buf[this.pos++] = (this.acc >>> this.bits) & 0xff;
      }
      this.acc &= (1 << this.bits) - 1;
    }
  }
  writeSigned(value: number, n: number): void {
    this.write(value < 0 ? value + 2 ** n : value, n);
  }
  /** `q` zero bits then a one. */
  unary(q: number): void {
    while (q >= 24) {
      this.write(0, 24);
      q -= 24;
    }
    this.write(1, q + 1);
  }
  alignToByte(): void {
    if (this.bits > 0) this.write(0, 8 - this.bits);
  }
  get bytePos(): number {
    return this.pos;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
  reset(): void {
    this.pos = 0;
    this.acc = 0;
    this.bits = 0;
  }
}

const CRC8 = Uint8Array.from({ length: 256 }, (_, i) => {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
  return c;
});
const CRC16 = Uint16Array.from({ length: 256 }, (_, i) => {
  let c = i << 8;
  for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x8005) & 0xffff : (c << 1) & 0xffff;
  return c;
});
export function crc8(b: Uint8Array): number {
  let c = 0;
  for (let i = 0; i < b.length; i++) c = CRC8[c ^ b[i]!]!;
  return c;
}
export function crc16(b: Uint8Array): number {
  let c = 0;
  for (let i = 0; i < b.length; i++) c = ((c << 8) & 0xffff) ^ CRC16[(c >> 8) ^ b[i]!]!;
  return c;
}

/** Residuals of the fixed predictor of `order` (0..4) for samples [order, n). */
function fixedResidual(x: Int32Array, n: number, order: number, out: Float64Array): void {
  for (let i = order; i < n; i++) {
    let r: number;
    switch (order) {
      case 0: r = x[i]!; break;
      case 1: r = x[i]! - x[i - 1]!; break;
      case 2: r = x[i]! - 2 * x[i - 1]! + x[i - 2]!; break;
      case 3: r = x[i]! - 3 * x[i - 1]! + 3 * x[i - 2]! - x[i - 3]!; break;
      default: r = x[i]! - 4 * x[i - 1]! + 6 * x[i - 2]! - 4 * x[i - 3]! + x[i - 4]!; break;
    }
    out[i - order] = r;
  }
}

const zigzag = (r: number): number => (r >= 0 ? 2 * r : -2 * r - 1);

/**
 * Rice parameter (0..30) for a run of `n` zigzagged residuals summing to `sum`, and its estimated
 * cost in bits (n·(k+1) + sum/2^k, as libFLAC estimates it): the parameter is exact to choose, the
 * cost is close enough to compare partitionings.
 */
function riceFor(sum: number, n: number): { k: number; bits: number } {
  let best = { k: 0, bits: Infinity };
  const mean = n > 0 ? sum / n : 0;
  const guess = mean > 1 ? Math.min(30, Math.floor(Math.log2(mean))) : 0;
  for (let k = Math.max(0, guess - 1); k <= Math.min(30, guess + 1); k++) {
    const bits = n * (k + 1) + Math.floor(sum / 2 ** k);
    if (bits < best.bits) best = { k, bits };
  }
  return best;
}

interface Coded {
  order: number;
  partitionOrder: number;
  params: number[];
  bits: number;
}

/** The cheapest partitioning (orders 0..6) of one order's zigzagged residuals. */
function planResidual(u: Float64Array, n: number, order: number): Coded {
  const maxP = 6;
  let top = 0;
  while (top < maxP && n % (1 << (top + 1)) === 0 && n / (1 << (top + 1)) > order) top++;
  // sums of the finest partitions, merged pairwise for the coarser orders
  const parts = 1 << top;
  const size = n / parts;
  let sums = new Float64Array(parts);
  for (let j = 0; j < parts; j++) {
    const from = j === 0 ? 0 : j * size - order;
    const to = (j + 1) * size - order;
    let s = 0;
    for (let i = from; i < to; i++) s += u[i]!;
    sums[j] = s;
  }
  let best: Coded = { order, partitionOrder: 0, params: [], bits: Infinity };
  for (let p = top; p >= 0; p--) {
    const count = 1 << p;
    const psize = n / count;
    const params: number[] = [];
    let bits = 6;
    for (let j = 0; j < count; j++) {
      const r = riceFor(sums[j]!, j === 0 ? psize - order : psize);
      params.push(r.k);
      bits += 5 + r.bits;
    }
    if (bits < best.bits) best = { order, partitionOrder: p, params, bits };
    if (p > 0) {
      const merged = new Float64Array(count / 2);
      for (let j = 0; j < count / 2; j++) merged[j] = sums[2 * j]! + sums[2 * j + 1]!;
      sums = merged;
    }
  }
  return best;
}

/** One subframe: fixed predictor with Rice-coded residuals, or verbatim when smaller. */
function writeSubframe(w: BitWriter, x: Int32Array, n: number, bps: number, scratch: Float64Array): void {
  let constant = true;
  for (let i = 1; i < n && constant; i++) if (x[i] !== x[0]) constant = false;
  if (constant) {
    w.write(0, 8); // 0 | 000000 constant | no wasted bits
    w.writeSigned(x[0]!, bps);
    return;
  }
  // Choose the order by the sum of absolute residuals, as libFLAC does for fixed predictors.
  let order = 0;
  let bestSum = Infinity;
  for (let o = 0; o <= Math.min(4, n - 1); o++) {
    fixedResidual(x, n, o, scratch);
    let s = 0;
    for (let i = 0; i < n - o; i++) s += Math.abs(scratch[i]!);
    if (s < bestSum) {
      bestSum = s;
      order = o;
    }
  }
  fixedResidual(x, n, order, scratch);
  for (let i = 0; i < n - order; i++) scratch[i] = zigzag(scratch[i]!);
  const plan = planResidual(scratch, n, order);
  if (plan.bits + order * bps >= n * bps) {
    w.write(0b00000010, 8); // verbatim
    for (let i = 0; i < n; i++) w.writeSigned(x[i]!, bps);
    return;
  }
  w.write(0b00010000 | (order << 1), 8); // 0 | 001xxx fixed, order xxx | no wasted bits
  for (let i = 0; i < order; i++) w.writeSigned(x[i]!, bps);
  w.write(1, 2); // RICE2: 5-bit parameters
  w.write(plan.partitionOrder, 4);
  const parts = 1 << plan.partitionOrder;
  const size = n / parts;
  for (let j = 0; j < parts; j++) {
    const k = plan.params[j]!;
    w.write(k, 5);
    const from = j === 0 ? 0 : j * size - order;
    const to = (j + 1) * size - order;
    const d = 2 ** k;
    for (let i = from; i < to; i++) {
      const u = scratch[i]!;
      const q = Math.floor(u / d);
      w.unary(q);
      if (k > 0) w.write(u - q * d, k);
    }
  }
}

/** The frame number as FLAC's extended UTF-8 code (1..7 bytes). */
function utf8Number(w: BitWriter, v: number): void {
  if (v < 0x80) return w.write(v, 8);
  let m = 1; // continuation bytes
  while (v >= 2 ** (6 * m + 6 - m)) m++;
  const lead = (0xff << (7 - m)) & 0xff;
  w.write(lead | Math.floor(v / 2 ** (6 * m)), 8);
  for (let j = m - 1; j >= 0; j--) w.write(0x80 | (Math.floor(v / 2 ** (6 * j)) & 0x3f), 8);
}

function sampleRateCode(rate: number): { code: number; extra?: [number, number] } {
  const table: Record<number, number> = { 88200: 1, 176400: 2, 192000: 3, 8000: 4, 16000: 5, 22050: 6, 24000: 7, 32000: 8, 44100: 9, 48000: 10, 96000: 11 };
  const code = table[rate];
  if (code !== undefined) return { code };
  if (rate % 1000 === 0 && rate / 1000 < 256) return { code: 12, extra: [rate / 1000, 8] };
  if (rate < 65536) return { code: 13, extra: [rate, 16] };
  throw new RangeError(`sample rate ${rate} cannot be coded in a FLAC frame header`);
}

export interface FlacStreamOptions {
  /**
   * Stream instead of collecting: the header and then each frame go to `onBytes` as they are made
   * (the bytes are the encoder's: copy what you keep), and finish() returns an empty array.
   * STREAMINFO then carries `totalSamples` (0 = unknown) and leaves the frame sizes unknown (0).
   */
  onBytes?: (bytes: Uint8Array) => void;
  totalSamples?: number;
  /**
   * Frames only, as they are made (the bytes are the encoder's: copy what you keep); finish() then
   * returns the complete STREAMINFO (total, frame sizes) that goes in front of them: the same file
   * as without options, for a writer that puts the head in place at the end.
   */
  onFrame?: (bytes: Uint8Array) => void;
}

export function createFlacStreamEncoder(sampleRate: number, channels: 1 | 2, opts: FlacStreamOptions = {}): StemEncoder {
  const rate = sampleRateCode(sampleRate);
  const block = Array.from({ length: channels }, () => new Int32Array(FLAC_BLOCK));
  const side = new Int32Array(FLAC_BLOCK);
  const scratch = new Float64Array(FLAC_BLOCK);
  const sink = new ByteSink();
  const frame = new BitWriter(FLAC_BLOCK * channels * 4 + 64);
  let filled = 0;
  let frameNo = 0;
  let total = 0;
  let minFrame = Infinity;
  let maxFrame = 0;

  /** Sum of absolute order-2 residuals: how well a channel predicts, to choose left/side. */
  const roughness = (x: Int32Array, n: number): number => {
    let s = 0;
    for (let i = 2; i < n; i++) s += Math.abs(x[i]! - 2 * x[i - 1]! + x[i - 2]!);
    return s;
  };

  function flush(): void {
    const n = filled;
    if (n === 0) return;
    let assignment = channels - 1; // independent
    if (channels === 2) {
      for (let i = 0; i < n; i++) side[i] = block[0]![i]! - block[1]![i]!;
      // left/side when the side channel codes smaller than the right one (the left is common to both)
      if (roughness(side, n) < roughness(block[1]!, n)) assignment = 0b1000;
    }
    frame.reset();
    frame.write(0xfff8, 16); // sync, reserved, fixed block size
    const sizeCode = n === FLAC_BLOCK ? 12 : 7;
    frame.write(sizeCode, 4);
    frame.write(rate.code, 4);
    frame.write(assignment, 4);
    frame.write(0b110, 3); // 24 bits per sample
    frame.write(0, 1);
    utf8Number(frame, frameNo);
    if (sizeCode === 7) frame.write(n - 1, 16);
    if (rate.extra) frame.write(rate.extra[0], rate.extra[1]);
    frame.write(crc8(frame.bytes()), 8);
    if (assignment === 0b1000) {
      writeSubframe(frame, block[0]!, n, BPS, scratch);
      writeSubframe(frame, side, n, BPS + 1, scratch);
    } else {
      for (let c = 0; c < channels; c++) writeSubframe(frame, block[c]!, n, BPS, scratch);
    }
    frame.alignToByte();
    frame.write(crc16(frame.bytes()), 16);
    const bytes = frame.bytes();
    if (opts.onFrame) opts.onFrame(bytes);
    else if (opts.onBytes) {
      if (frameNo === 0) opts.onBytes(streamInfo());
      opts.onBytes(bytes);
    } else sink.push(bytes);
    minFrame = Math.min(minFrame, bytes.length);
    maxFrame = Math.max(maxFrame, bytes.length);
    frameNo++;
    total += n;
    filled = 0;
  }

  function streamInfo(): Uint8Array {
    const w = new BitWriter(42);
    w.write(0x664c6143, 32); // "fLaC"
    w.write(1, 1); // last metadata block
    w.write(0, 7); // STREAMINFO
    w.write(34, 24);
    w.write(FLAC_BLOCK, 16);
    w.write(FLAC_BLOCK, 16);
    const streaming = opts.onBytes !== undefined && opts.onFrame === undefined;
    w.write(streaming || minFrame === Infinity ? 0 : minFrame, 24);
    w.write(streaming ? 0 : maxFrame, 24);
    w.write(sampleRate, 20);
    w.write(channels - 1, 3);
    w.write(BPS - 1, 5);
    const count = streaming ? (opts.totalSamples ?? 0) : total;
    w.write(Math.floor(count / 2 ** 32), 4);
    w.write(count % 2 ** 32, 32);
    for (let i = 0; i < 4; i++) w.write(0, 32); // MD5 not computed
    return w.bytes().slice();
  }

  return {
    encode(chs) {
      const len = chs[0]!.length;
      for (let i = 0; i < len; ) {
        const take = Math.min(FLAC_BLOCK - filled, len - i);
        for (let c = 0; c < channels; c++) {
          const src = chs[c]!;
          const dst = block[c]!;
          for (let j = 0; j < take; j++) dst[filled + j] = toPcm24(src[i + j]!);
        }
        filled += take;
        i += take;
        if (filled === FLAC_BLOCK) flush();
      }
    },
    finish() {
      flush();
      if (opts.onFrame) return streamInfo();
      if (opts.onBytes) {
        if (frameNo === 0) opts.onBytes(streamInfo());
        return new Uint8Array(0);
      }
      return sink.concat(streamInfo());
    },
  };
}
