import { AudioInputError } from '@msaas/common';
import { Resampler } from './resample.ts';
import { PcmQueue } from './pcm-queue.ts';
import { MODEL_SAMPLE_RATE } from './decode.ts';

/** Decoded PCM as a decoder returns it: one Float32Array per channel (1 or 2), at its own rate. */
export interface DecodedBlock {
  channelData: Float32Array[];
  sampleRate: number;
}

/**
 * One format's decoder, pulled a little at a time: each `next()` feeds it a bounded slice of the
 * compressed bytes and returns what came out (possibly nothing), or null once the audio has ended.
 * It throws AudioInputError for bad audio.
 */
export interface BlockSource {
  next(): Promise<DecodedBlock | null>;
  close(): void;
}

/** Decoded audio longer than the header said by more than this is refused (a lying header). */
const OVERRUN_SEC = 2;

/**
 * Stereo 44.1 kHz PCM from any format's BlockSource, pulled as the chunk pipeline asks for it: mono
 * is duplicated, other rates are resampled, and only what the next read needs is decoded, so memory
 * does not depend on the song's length. Decoding past `maxDurationSec` stops with too_long (a header
 * that understated the length).
 */
export class BlockPcmStream {
  private readonly queue = new PcmQueue();
  private ended = false;
  private freed = false;
  private resampler: Resampler | null = null;
  private inputRate = 0;
  private decodedInput = 0;
  samplesRead = 0;

  constructor(
    private readonly source: BlockSource,
    /** Estimated length at 44.1 kHz (from the container's header; refined at the end). */
    readonly estimatedSamples: number,
    private readonly maxDurationSec: number,
    private readonly what: string,
  ) {}

  /** Writes up to `count` samples per channel into dst[c][offset..]; fewer only at the end of the audio. */
  async read(dst: readonly Float32Array[], offset: number, count: number): Promise<number> {
    let written = this.queue.take(dst, offset, count);
    while (written < count && !this.ended) {
      await this.decodeMore();
      written += this.queue.take(dst, offset + written, count - written);
    }
    this.samplesRead += written;
    return written;
  }

  private async decodeMore(): Promise<void> {
    let block: DecodedBlock | null;
    try {
      block = await this.source.next();
    } catch (err) {
      this.close();
      if (err instanceof AudioInputError) throw err;
      throw new AudioInputError('corrupt', `the ${this.what} could not be decoded (${err instanceof Error ? err.message.split('\n')[0]!.slice(0, 120) : 'decoder error'})`, { cause: err });
    }
    if (!block) {
      if (this.resampler) this.queue.push(this.resampler.flush());
      this.ended = true;
      this.close();
      return;
    }
    const [left, second] = block.channelData;
    if (!left || left.length === 0) return;
    if (this.inputRate === 0) {
      this.inputRate = block.sampleRate;
      if (block.sampleRate !== MODEL_SAMPLE_RATE) this.resampler = new Resampler(block.sampleRate, MODEL_SAMPLE_RATE, 2);
    } else if (block.sampleRate !== this.inputRate) {
      this.close();
      throw new AudioInputError('corrupt', `the ${this.what} changes its sample rate mid-stream (${this.inputRate} → ${block.sampleRate} Hz)`);
    }
    this.decodedInput += left.length;
    if (this.decodedInput > (this.maxDurationSec + OVERRUN_SEC) * this.inputRate) {
      this.close();
      throw new AudioInputError('too_long', `the ${this.what} decodes to more than ${this.maxDurationSec} s; the maximum is ${this.maxDurationSec} s`);
    }
    const right = second && second.length === left.length ? second : left;
    this.queue.push(this.resampler ? this.resampler.push([left, right]) : [left.slice(), right === left ? left.slice() : right.slice()]);
  }

  /** Samples of the input's own rate decoded so far. */
  get decodedInputSamples(): number {
    return this.decodedInput;
  }

  get done(): boolean {
    return this.ended && this.queue.empty;
  }

  close(): void {
    if (this.freed) return;
    this.freed = true;
    this.source.close();
  }
}
