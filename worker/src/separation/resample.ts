/**
 * Streaming rational resampler (polyphase windowed sinc). MP3s at 32 or 48 kHz (and the MPEG-2
 * rates) are brought to the model's 44.1 kHz chunk by chunk, so a long song is never held whole.
 */
function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/** Blackman window on [-1, 1]. */
function blackman(u: number): number {
  if (u <= -1 || u >= 1) return 0;
  const x = (u + 1) / 2;
  return 0.42 - 0.5 * Math.cos(2 * Math.PI * x) + 0.08 * Math.cos(4 * Math.PI * x);
}

export class Resampler {
  readonly up: number;
  readonly down: number;
  private readonly half: number;
  /** phases[p * 2H + j] = tap j for output phase p / up. */
  private readonly phases: Float32Array;
  private buf: Float32Array[];
  private bufLen: number;
  /** Absolute input index of buf[0]. */
  private base: number;
  private totalIn = 0;
  private nextOut = 0;

  constructor(inRate: number, outRate: number, private readonly channels: number, halfWidth = 24) {
    const g = gcd(inRate, outRate);
    this.up = outRate / g;
    this.down = inRate / g;
    this.half = halfWidth;
    const cutoff = Math.min(1, this.up / this.down) * 0.96;
    const taps = 2 * halfWidth;
    this.phases = new Float32Array(this.up * taps);
    for (let p = 0; p < this.up; p++) {
      const frac = p / this.up;
      let sum = 0;
      for (let j = 0; j < taps; j++) {
        const t = j - (halfWidth - 1) - frac; // tap j reads input k + j - (H - 1)
        const v = cutoff * sinc(cutoff * t) * blackman(t / halfWidth);
        this.phases[p * taps + j] = v;
        sum += v;
      }
      for (let j = 0; j < taps; j++) this.phases[p * taps + j] /= sum; // unity DC gain per phase
    }
    // Start with H-1 zeros of history so output 0 is centred on input 0.
    const hist = halfWidth - 1;
    this.buf = Array.from({ length: channels }, () => new Float32Array(Math.max(4096, 4 * hist)));
    this.bufLen = hist;
    this.base = -hist;
  }

  /** Feeds input samples; returns the output samples that are now computable. */
  push(input: readonly Float32Array[]): Float32Array[] {
    const n = input[0].length;
    this.ensure(this.bufLen + n);
    for (let c = 0; c < this.channels; c++) this.buf[c].set(input[c], this.bufLen);
    this.bufLen += n;
    this.totalIn += n;
    return this.produce(false);
  }

  /** Ends the stream: pads with zeros and returns the remaining output. */
  flush(): Float32Array[] {
    this.ensure(this.bufLen + this.half + 1);
    for (let c = 0; c < this.channels; c++) this.buf[c].fill(0, this.bufLen, this.bufLen + this.half + 1);
    this.bufLen += this.half + 1;
    return this.produce(true);
  }

  private ensure(size: number): void {
    if (size <= this.buf[0].length) return;
    const cap = Math.max(size, this.buf[0].length * 2);
    this.buf = this.buf.map((b) => {
      const nb = new Float32Array(cap);
      nb.set(b.subarray(0, this.bufLen));
      return nb;
    });
  }

  private produce(final: boolean): Float32Array[] {
    const taps = 2 * this.half;
    const { up, down } = this;
    // Output n needs input k + H where k = floor(n * down / up).
    const lastAvailable = this.base + this.bufLen - 1;
    const totalOut = Math.ceil((this.totalIn * up) / down);
    let end = this.nextOut;
    while (true) {
      if (final && end >= totalOut) break;
      const k = Math.floor((end * down) / up);
      if (k + this.half > lastAvailable) break;
      end++;
    }
    const count = end - this.nextOut;
    const out = Array.from({ length: this.channels }, () => new Float32Array(count));
    for (let i = 0; i < count; i++) {
      const n = this.nextOut + i;
      const num = n * down;
      const k = Math.floor(num / up);
      const p = num - k * up;
      const start = k - (this.half - 1) - this.base;
      const off = p * taps;
      for (let c = 0; c < this.channels; c++) {
        const b = this.buf[c];
        let acc = 0;
        for (let j = 0; j < taps; j++) acc += b[start + j] * this.phases[off + j];
        out[c][i] = acc;
      }
    }
    this.nextOut = end;
    // Drop history no later output can reach.
    const keepFrom = Math.floor((this.nextOut * down) / up) - (this.half - 1) - this.base;
    if (keepFrom > 0) {
      for (let c = 0; c < this.channels; c++) this.buf[c].copyWithin(0, keepFrom, this.bufLen);
      this.bufLen -= keepFrom;
      this.base += keepFrom;
    }
    return out;
  }
}
