import { setImmediate as nextTurn } from 'node:timers/promises';
import { AudioInputError } from '@msaas/common';
import { SEGMENT, SOURCES, FREQ_BINS, FRAMES, type Model, type RunResult } from './model.ts';
import { placeChunk, StreamingOverlapAdd, type ChunkPlacement } from './chunking.ts';
import { SeparationAbortedError } from './errors.ts';
import type { Spectrogram } from './stft.ts';

/** Where chunk input comes from: a streaming decoder (sync for MP3, async for the wasm decoders) or an in-memory buffer. */
export interface PcmReader {
  read(dst: readonly Float32Array[], offset: number, count: number): number | Promise<number>;
  estimatedSamples: number;
  /**
   * A reader that can move without decoding (song-reader.ts, a decoder kept between a worker's
   * ranges of one song): moves toward song frame `index` and says where it is now (at most
   * `index`); the pipeline reads on from there. Without it the reader is at the song's start.
   */
  seek?(index: number): Promise<number>;
}

/** Where finished stem samples go, source by source, in order. */
export interface StemSink {
  write(source: number, left: Float32Array, right: Float32Array): void;
}

/** Where the time of one separation went. */
export interface SeparationStats {
  chunks: number;
  samples: number;
  totalMs: number;
  /** Wall time spent inside `session.run` (on the inference thread). */
  runMs: number;
  /** Non-finite output samples replaced by 0 before encoding (expected 0). */
  nonFiniteReplaced: number;
}

/** What one chunk made final: the same samples the sink got, every source, after the sink got them. */
export interface FinishedChunk {
  /** Per source (model order): left and right, of equal length; reused after the call's promise settles: copy what you keep. */
  tracks: readonly (readonly [Float32Array, Float32Array])[];
  /** The song's length in samples once the reader has reached its end (a chunk or two before the last), else null. */
  songLength: number | null;
  last: boolean;
}

/**
 * One range of consecutive chunks of a song split over workers (issue 23): chunks [firstChunk,
 * endChunk), or to the song's end when endChunk is null. The sink gets the samples final within the
 * range; what the neighbouring ranges must add at its edges goes to `onHead` and `onTail`.
 */
export interface ChunkRange {
  firstChunk: number;
  endChunk: number | null;
  /** The first chunk's own output over its overlap with the chunk before (firstChunk > 0): per source [left, right]. */
  onHead?: (head: Float32Array[][]) => void;
  /** After the range's last chunk (endChunk set): the window's Σ w·out and Σ w over the next chunk's overlap. */
  onTail?: (pending: { acc: Float32Array[][]; weightSum: Float32Array }) => void;
}

export interface PipelineOptions {
  /** Fraction of chunks done, 0..1, non-decreasing; called with 1 at the end. */
  onProgress?: (fraction: number) => void;
  signal?: AbortSignal;
  /**
   * After each chunk's samples went to the sink, before its progress is reported; awaited, so a
   * consumer that falls behind (uploads) holds the loop back instead of piling up.
   */
  onChunk?: (chunk: FinishedChunk) => void | Promise<void>;
  /** Run only these chunks (a range of a split song); default the whole song. */
  range?: ChunkRange;
}

/** One set of model inputs: the segment's samples and its spectrogram. */
export interface ModelBuffers {
  mix: Float32Array;
  spec: Float32Array;
}

const newBuffers = (): ModelBuffers => ({ mix: new Float32Array(2 * SEGMENT), spec: new Float32Array(4 * FREQ_BINS * FRAMES) });

/**
 * The two sets of model inputs an engine owns: one is filled while the other is in flight on the
 * inference thread (which transfers it away and back). All recycling happens here.
 */
export class BufferPool {
  private readonly free: ModelBuffers[] = [newBuffers(), newBuffers()];

  take(): ModelBuffers {
    const buf = this.free.pop();
    if (!buf) throw new Error('internal: no free model buffers');
    return buf;
  }

  /** Takes back the buffers a model run returns. */
  give(res: Pick<RunResult, 'mix' | 'spec'>): void {
    this.free.push({ mix: res.mix, spec: res.spec });
  }

  /** After a failed separation: exactly two usable sets again, whatever was lost in flight. */
  reset(): void {
    this.free.splice(2);
    while (this.free.length < 2) this.free.push(newBuffers());
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof Error ? signal.reason : new SeparationAbortedError();
  }
}

type Prepared = { place: ChunkPlacement; buf: ModelBuffers };

/**
 * One separation's chunk loop: read the song chunk by chunk (fill), turn each chunk into model
 * inputs (prepare), run the model on one chunk while the next is prepared and the previous is
 * finished (iSTFT + time branch, overlap-add, emission of the samples now final).
 */
class ChunkPipeline {
  private readonly overlapAdd: StreamingOverlapAdd;
  /** Input window: song samples [inBase, inBase + inLen). */
  private readonly input = [new Float32Array(2 * SEGMENT), new Float32Array(2 * SEGMENT)];
  private inBase = 0;
  private inLen = 0;
  /** Known once the reader runs dry. */
  private songLength = -1;
  private nonFinite = 0;

  constructor(
    private readonly model: Model,
    private readonly spectrogram: Spectrogram,
    private readonly pool: BufferPool,
    private readonly stride: number,
    private readonly reader: PcmReader,
    private readonly sink: StemSink,
  ) {
    this.overlapAdd = new StreamingOverlapAdd(SOURCES, SEGMENT, stride);
  }

  /**
   * Decodes and discards the song's samples before `index` (a range's window starts there): every
   * decoder is run from the file's start, so the samples a range sees are the ones a whole run sees.
   * A reader that can seek (a decoder kept from the worker's last range of the song) starts there.
   */
  private async skipTo(index: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.reader.seek) this.inBase = await this.reader.seek(index);
    const scratch = [new Float32Array(1 << 16), new Float32Array(1 << 16)];
    while (this.songLength < 0 && this.inBase < index) {
      const want = Math.min(scratch[0]!.length, index - this.inBase);
      const got = await this.reader.read(scratch, 0, want);
      this.inBase += got;
      if (got < want) this.songLength = this.inBase;
      await nextTurn();
      throwIfAborted(signal);
    }
  }

  /** Reads input up to song index `until` (or the end); drops what no chunk needs any more. */
  private async fill(keepFrom: number, until: number): Promise<void> {
    const drop = Math.min(Math.max(0, keepFrom - this.inBase), this.inLen);
    if (drop > 0) {
      for (const ch of this.input) ch.copyWithin(0, drop, this.inLen);
      this.inBase += drop;
      this.inLen -= drop;
    }
    while (this.songLength < 0 && this.inBase + this.inLen < until) {
      const want = until - (this.inBase + this.inLen);
      const got = await this.reader.read(this.input, this.inLen, want);
      this.inLen += got;
      if (got < want) this.songLength = this.inBase + this.inLen;
    }
  }

  /** Fills a buffer set with chunk `offset`'s segment and its spectrogram; null when the song ended before it. */
  private async prepare(offset: number): Promise<Prepared | null> {
    await this.fill(offset - Math.floor(SEGMENT / 2), offset + SEGMENT);
    await nextTurn();
    const { songLength, inBase, inLen } = this;
    if (songLength >= 0 && offset >= songLength) return null;
    const place = placeChunk(offset, songLength >= 0 ? songLength : offset + SEGMENT, SEGMENT);
    const buf = this.pool.take();
    const end = songLength >= 0 ? songLength : Infinity;
    for (let c = 0; c < 2; c++) {
      const dst = buf.mix.subarray(c * SEGMENT, (c + 1) * SEGMENT);
      dst.fill(0);
      const from = Math.max(place.windowStart, 0);
      const to = Math.min(place.windowStart + SEGMENT, end, inBase + inLen);
      if (to > from) dst.set(this.input[c]!.subarray(from - inBase, to - inBase), from - place.windowStart);
    }
    this.spectrogram.forward(buf.mix.subarray(0, SEGMENT), buf.mix.subarray(SEGMENT), buf.spec);
    return { place, buf };
  }

  /**
   * iSTFT + time branch, overlap-add, and emission of the samples now final. It yields to the
   * event loop between sources and between stems: done in one go it held the worker's thread
   * for 1.3–1.8 s per chunk on a quiet machine (and ~10 s under load), so SIGTERM, progress
   * writes and the reaper waited that long. The model keeps running on its own thread meanwhile.
   */
  private async finish(
    place: ChunkPlacement,
    res: RunResult,
    isLast: boolean,
    opts: PipelineOptions,
    edges: { head: boolean; tail: boolean } = { head: false, tail: false },
  ): Promise<void> {
    const { freq, time } = res;
    const plane = 4 * FREQ_BINS * FRAMES;
    // a range's first chunk: its own output over the overlap with the chunk before goes to the stitcher
    const headLen = edges.head ? Math.min(SEGMENT - this.stride, place.length) : 0;
    const head: Float32Array[][] = [];
    for (let s = 0; s < SOURCES; s++) {
      const left = time.subarray(2 * s * SEGMENT, (2 * s + 1) * SEGMENT);
      const right = time.subarray((2 * s + 1) * SEGMENT, (2 * s + 2) * SEGMENT);
      this.spectrogram.inverseAdd(freq, s * plane, left, right);
      if (headLen > 0) head.push([left.slice(place.trim, place.trim + headLen), right.slice(place.trim, place.trim + headLen)]);
      this.overlapAdd.add(s, left, right, place.trim, place.length);
      await nextTurn();
      throwIfAborted(opts.signal);
    }
    this.overlapAdd.addWeights(place.length);
    if (headLen > 0) opts.range?.onHead?.(head);
    const emitted = this.overlapAdd.emit(isLast ? place.length : this.stride);
    // the samples before headLen are not final here (the chunk before adds to them): the stitcher's
    const tracks = headLen > 0 ? emitted.tracks.map(([l, r]) => [l!.subarray(headLen), r!.subarray(headLen)]) : emitted.tracks;
    this.nonFinite += emitted.nonFinite;
    if (edges.tail) opts.range?.onTail?.(this.overlapAdd.pending(SEGMENT - this.stride));
    for (let s = 0; s < SOURCES; s++) {
      this.sink.write(s, tracks[s]![0]!, tracks[s]![1]!);
      await nextTurn();
    }
    throwIfAborted(opts.signal);
    if (opts.onChunk) await opts.onChunk({ tracks: tracks.map(([l, r]) => [l!, r!] as const), songLength: this.songLength >= 0 ? this.songLength : null, last: isLast });
  }

  async run(opts: PipelineOptions): Promise<SeparationStats> {
    const started = performance.now();
    const range = opts.range;
    const first = range?.firstChunk ?? 0;
    const end = range?.endChunk ?? null;
    const songChunks = Math.max(1, Math.ceil(Math.max(1, this.reader.estimatedSamples) / this.stride));
    const estChunks = Math.max(1, (end ?? songChunks) - first);
    let runMs = 0;
    let chunks = 0;
    let inflight: Promise<RunResult> | null = null;
    try {
      // a range's first chunk reads from half a segment before it (the song's last chunk is centred)
      if (first > 0 || this.reader.seek) await this.skipTo(Math.max(0, first * this.stride - Math.floor(SEGMENT / 2)), opts.signal);
      let current: Prepared | null = await this.prepare(first * this.stride);
      if (!current) throw new AudioInputError('empty', first > 0 ? `the song ends before chunk ${first}` : 'the upload holds no audio (zero-length)');
      opts.onProgress?.(0);
      throwIfAborted(opts.signal);
      inflight = this.model.run(current.buf.mix, current.buf.spec);
      let index = first;
      while (current) {
        // While the model runs chunk i, read and transform chunk i+1.
        const rangeEnds = end !== null && index + 1 >= end;
        throwIfAborted(opts.signal);
        const next: Prepared | null = rangeEnds ? null : await this.prepare(current.place.offset + this.stride);
        const res: RunResult = await inflight!;
        inflight = null;
        runMs += res.runMs;
        this.pool.give(res);
        if (next) {
          throwIfAborted(opts.signal);
          inflight = this.model.run(next.buf.mix, next.buf.spec);
        }
        // ...and while it runs chunk i+1, finish chunk i (a range's end is no song's end: its tail waits for the next range).
        await this.finish(current.place, res, next === null && !rangeEnds, opts, { head: index === first && first > 0, tail: rangeEnds });
        chunks++;
        index++;
        opts.onProgress?.(next ? Math.min(chunks / Math.max(estChunks, chunks + 1), 0.99) : 1);
        current = next;
      }
    } catch (err) {
      // Leave the shared buffers usable for the next job: wait for the model and take back what it returns.
      if (inflight) {
        const res = await (inflight as Promise<RunResult>).catch(() => null);
        if (res) this.pool.give(res);
      }
      this.pool.reset();
      throw err;
    }
    return { chunks, samples: this.songLength, totalMs: performance.now() - started, runMs, nonFiniteReplaced: this.nonFinite };
  }
}

/** Runs one separation through the model, chunk by chunk, into `sink`; returns where its time went. */
export function runChunkPipeline(
  parts: { model: Model; spectrogram: Spectrogram; pool: BufferPool; stride: number },
  reader: PcmReader,
  sink: StemSink,
  opts: PipelineOptions,
): Promise<SeparationStats> {
  return new ChunkPipeline(parts.model, parts.spectrogram, parts.pool, parts.stride, reader, sink).run(opts);
}
