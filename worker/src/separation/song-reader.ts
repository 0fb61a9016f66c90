import type { AudioStream } from './decode-audio.ts';
import type { PcmReader } from './chunk-pipeline.ts';

/**
 * A song's decoder kept between the ranges one worker runs of it (issue 23). A range's window
 * starts half a segment before its first chunk, and a range decodes the song from the file's
 * start to get there — the samples a decoder gives depend on everything before them (an MP3's bit
 * reservoir, a resampler's state), and only a decoder run from the start gives a range exactly the
 * samples a whole run sees. Kept, the decoder goes on from where the worker's last range of the
 * song left it, and the last `retain` frames it gave are kept too (the next range's window starts
 * a quarter segment before the last one's input ends): a worker decodes each song once, forward,
 * however many of its ranges it runs, instead of once per range from the start. The samples are the
 * decoder's own in the same order, so the result stays bit-identical.
 */
export class SongReader implements PcmReader {
  private stream: AudioStream | null = null;
  /** Frames the decoder has given since it started. */
  private streamPos = 0;
  private ended = false;
  /** The last frames it gave: song frames [streamPos − tailLen, streamPos). */
  private readonly tail: [Float32Array, Float32Array];
  private tailLen = 0;
  /** Where the next read starts. */
  private pos = 0;
  estimatedSamples = 0;

  constructor(private readonly open: () => Promise<AudioStream>, retain: number) {
    this.tail = [new Float32Array(retain), new Float32Array(retain)];
  }

  /** Opens the decoder if it is not open (throws AudioInputError as openAudioStream does). */
  async start(): Promise<void> {
    if (!this.stream) await this.restart();
  }

  /**
   * Moves to song frame `index` without decoding where it can: within what is kept, or to the
   * decoder's own position when `index` is beyond it (the caller reads on to `index`). Before what
   * is kept, the decoder starts over from the file's start. Returns the position now.
   */
  async seek(index: number): Promise<number> {
    if (index >= this.streamPos - this.tailLen && index <= this.streamPos) this.pos = index;
    else if (index > this.streamPos) this.pos = this.streamPos;
    else await this.restart();
    return this.pos;
  }

  async read(dst: readonly Float32Array[], offset: number, count: number): Promise<number> {
    let n = 0;
    if (this.pos < this.streamPos) {
      const from = this.pos - (this.streamPos - this.tailLen);
      n = Math.min(count, this.streamPos - this.pos);
      for (let c = 0; c < 2; c++) dst[c]!.set(this.tail[c]!.subarray(from, from + n), offset);
      this.pos += n;
    }
    if (n < count && !this.ended) {
      const got = await this.stream!.read(dst, offset + n, count - n);
      if (got < count - n) this.ended = true;
      this.keep(dst, offset + n, got);
      this.streamPos += got;
      this.pos += got;
      n += got;
    }
    return n;
  }

  close(): void {
    this.stream?.close();
    this.stream = null;
  }

  private async restart(): Promise<void> {
    this.close();
    this.stream = await this.open();
    this.estimatedSamples = this.stream.estimatedSamples;
    this.streamPos = 0;
    this.tailLen = 0;
    this.pos = 0;
    this.ended = false;
  }

  /** Keeps the frames just decoded (src[c][at, at + got)) as the newest of the tail. */
  private keep(src: readonly Float32Array[], at: number, got: number): void {
    const cap = this.tail[0].length;
    if (got >= cap) {
      for (let c = 0; c < 2; c++) this.tail[c]!.set(src[c]!.subarray(at + got - cap, at + got));
      this.tailLen = cap;
      return;
    }
    const drop = Math.max(0, this.tailLen + got - cap);
    if (drop > 0) {
      for (let c = 0; c < 2; c++) this.tail[c]!.copyWithin(0, drop, this.tailLen);
      this.tailLen -= drop;
    }
    for (let c = 0; c < 2; c++) this.tail[c]!.set(src[c]!.subarray(at, at + got), this.tailLen);
    this.tailLen += got;
  }
}
