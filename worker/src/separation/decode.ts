import { MPEGDecoder } from 'mpg123-decoder';
import { AudioInputError } from './errors.ts';
import { DEFAULT_MAX_DURATION_SEC, scanMp3, type Mp3Scan } from '@msaas/common';
import { Resampler } from './resample.ts';
import { PcmQueue } from './pcm-queue.ts';

export const MODEL_SAMPLE_RATE = 44100;
export { DEFAULT_MAX_DURATION_SEC };
/** Compressed bytes handed to the decoder per step: small, so decoded audio never piles up. */
const FEED_BYTES = 32 * 1024;

export interface DecodeOptions {
  maxDurationSec?: number;
}

/**
 * Stereo 44.1 kHz PCM pulled incrementally from an MP3: only the frames needed for the next
 * `read` are decoded and resampled, so memory does not depend on the song's length.
 */
export class PcmStream {
  readonly scan: Mp3Scan;
  private readonly decoder: MPEGDecoder;
  private readonly resampler: Resampler | null;
  private rangeIndex = 0;
  private rangePos: number;
  private readonly queue = new PcmQueue();
  private ended = false;
  private freed = false;
  samplesRead = 0;

  private constructor(private readonly bytes: Uint8Array, scan: Mp3Scan, decoder: MPEGDecoder) {
    this.scan = scan;
    this.decoder = decoder;
    this.resampler = scan.sampleRate === MODEL_SAMPLE_RATE ? null : new Resampler(scan.sampleRate, MODEL_SAMPLE_RATE, 2);
    this.rangePos = scan.ranges[0]?.[0] ?? 0;
  }

  /** Validates the MP3 (throws AudioInputError) and readies the decoder. */
  static async open(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<PcmStream> {
    const scan = scanMp3(bytes);
    const max = opts.maxDurationSec ?? DEFAULT_MAX_DURATION_SEC;
    if (scan.durationSec > max) {
      throw new AudioInputError(
        'too_long',
        `the song is ${Math.round(scan.durationSec)} s long; the maximum is ${max} s`,
      );
    }
    const decoder = new MPEGDecoder({ enableGapless: true });
    await decoder.ready;
    return new PcmStream(bytes, scan, decoder);
  }

  /** Estimated length at 44.1 kHz (from the frame scan; the exact length is known at the end). */
  get estimatedSamples(): number {
    return Math.round(this.scan.durationSec * MODEL_SAMPLE_RATE);
  }

  /**
   * Writes up to `count` samples per channel into dst[c][offset..]. Returns how many were written;
   * fewer than `count` only at the end of the audio.
   */
  read(dst: readonly Float32Array[], offset: number, count: number): number {
    let written = this.queue.take(dst, offset, count);
    while (written < count && !this.ended) {
      this.decodeMore();
      written += this.queue.take(dst, offset + written, count - written);
    }
    this.samplesRead += written;
    return written;
  }

  private decodeMore(): void {
    const range = this.scan.ranges[this.rangeIndex];
    if (!range) {
      if (this.resampler) this.queue.push(this.resampler.flush());
      this.ended = true;
      this.close();
      return;
    }
    const end = Math.min(range[1], this.rangePos + FEED_BYTES);
    let decoded;
    try {
      decoded = this.decoder.decode(this.bytes.subarray(this.rangePos, end));
    } catch (err) {
      this.close();
      throw new AudioInputError('corrupt', `the MP3 could not be decoded near byte ${this.rangePos}`, { cause: err });
    }
    this.rangePos = end;
    if (end >= range[1]) {
      this.rangeIndex++;
      this.rangePos = this.scan.ranges[this.rangeIndex]?.[0] ?? 0;
    }
    if (decoded.samplesDecoded === 0) return;
    const left = decoded.channelData[0];
    // mpg123 always returns two channels; for a mono stream both carry the same samples.
    const right = this.scan.channels === 1 || !decoded.channelData[1] ? left : decoded.channelData[1];
    this.queue.push(this.resampler ? this.resampler.push([left, right]) : [left, right]);
  }

  get done(): boolean {
    return this.ended && this.queue.empty;
  }

  close(): void {
    if (this.freed) return;
    this.freed = true;
    this.decoder.free();
  }
}

/** A stream of 44.1 kHz stereo PCM as the decoders give it (PcmStream, BlockPcmStream). */
export interface WholeReadable {
  readonly estimatedSamples: number;
  readonly done: boolean;
  read(dst: readonly Float32Array[], offset: number, count: number): number | Promise<number>;
}

/** Reads a stream to its end into one buffer per channel (grown as needed); the samples read. */
export async function readWhole(stream: WholeReadable): Promise<[Float32Array, Float32Array]> {
  let cap = Math.max(stream.estimatedSamples, 1024) + MODEL_SAMPLE_RATE;
  let out: [Float32Array, Float32Array] = [new Float32Array(cap), new Float32Array(cap)];
  let len = 0;
  while (true) {
    if (len === cap) {
      cap *= 2;
      const grown: [Float32Array, Float32Array] = [new Float32Array(cap), new Float32Array(cap)];
      grown[0].set(out[0]);
      grown[1].set(out[1]);
      out = grown;
    }
    const n = await stream.read(out, len, cap - len);
    len += n;
    if (n === 0 || stream.done) break;
  }
  return [out[0].slice(0, len), out[1].slice(0, len)];
}

/** Decodes a whole MP3 to 44.1 kHz stereo float32 (for tests, tools and short clips). */
export async function decodeMp3(
  bytes: Uint8Array,
  opts: DecodeOptions = {},
): Promise<{ channels: [Float32Array, Float32Array]; sampleRate: 44100; durationSec: number }> {
  const stream = await PcmStream.open(bytes, opts);
  try {
    const channels = await readWhole(stream);
    const len = channels[0].length;
    if (len === 0) throw new AudioInputError('empty', 'the MP3 holds no audio (zero-length)');
    return { channels, sampleRate: MODEL_SAMPLE_RATE, durationSec: len / MODEL_SAMPLE_RATE };
  } finally {
    stream.close();
  }
}
