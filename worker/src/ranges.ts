import type { Logger } from 'pino';
import {
  INSTRUMENTAL_PARTS,
  TRACKS,
  isTransientStoreError,
  withRetry,
  withTimeout,
  type Config,
  type JobRecord,
  type ObjectStore,
  type OutputFormat,
  type Queue,
  type RangeItem,
  type Stem,
} from '@msaas/common';
import type { OutputSink, OutputSpec, RangeInput, RangeOutput, StreamedFile } from './separation/index.ts';
import { stitchOverlap, transitionWeight } from './separation/index.ts';
import { SEGMENT } from './separation/model.ts';
import { pieceBytes } from './pieces.ts';
import { StemUpload, UploadStaging, type StoreAttempt } from './stem-upload.ts';
import { JobGone, JobLost } from './job.ts';
import type { RangeCache } from './range-cache.ts';

/**
 * One song, many workers (issue 23). A song longer than SPLIT_MIN_SEC is split by the worker that
 * took it into ranges of consecutive chunks (split-8.lua); any worker takes any range, separates only
 * its chunks and stores what it made (`ranges/<songhash>/<i>.f32`). The song's encoding, one unit per
 * stem, is queued with the ranges (split-8.lua) and runs in workers' side slots beside them: each unit
 * stitches its stem from the ranges' outputs in song order as they are done, and encodes it, so the
 * song ends one range's encoding after its last range; the last unit's worker completes the song.
 * Stitching redoes the single pass's overlap-add at the range edges with the same float32 operations
 * (chunking.ts stitchOverlap), so a split song's stems are bit-identical to the song run whole.
 */

/** What the range and stitch steps need from the separation engine. */
export interface RangeSeparator {
  separateRange(input: Uint8Array | RangeInput, range: { firstChunk: number; endChunk: number | null }, opts?: { signal?: AbortSignal; onProgress?: (f: number) => void }): Promise<RangeOutput>;
  encodeToSinks(
    output: OutputSpec,
    open: (stem: Stem, format: OutputFormat) => OutputSink,
    produce: (write: (source: number, left: Float32Array, right: Float32Array) => void, ready: () => Promise<void>) => Promise<void>,
  ): Promise<{ files: StreamedFile[] }>;
  readonly stride: number;
}

export interface RangeDeps {
  config: Config;
  queue: Queue;
  store: ObjectStore;
  logger: Logger;
  workerId: string;
  separator: RangeSeparator;
  /** This worker's last range outputs, read by its own encoding units without the store (range-cache.ts). */
  cache?: RangeCache;
}

/**
 * Where the ranges of a song of `frames` frames start, in chunks (the first 0), or null to run it
 * whole. About `rangeChunks` chunks each, evened out; the last range keeps at least two chunks, so
 * an estimate of the length off by up to a chunk never puts a range's end at the song's end. A song
 * of more than four ranges starts with ranges of 1, 1 and 2 chunks: the first piece of a split song
 * is final when range 0 is done (its edge with range 1 belongs to piece 1), so a listener gets first
 * audio after one chunk, as from a song run whole, and each later piece arrives before the audio
 * already there has played out (docs/live.md). Its last two ranges, when of four chunks or more, are
 * halved: workers take ranges in song order, so the small ones at the end even out when the last
 * workers finish (bench/ranges.ts simulates the schedule; docs/reliability.md).
 */
export function planSplit(frames: number, stride: number, rangeChunks: number): number[] | null {
  const chunks = Math.ceil(frames / stride);
  const head = chunks > 4 * rangeChunks ? [0, 1, 2] : [];
  const from = head.length > 0 ? 4 : 0;
  const n = Math.ceil((chunks - from) / rangeChunks);
  if (head.length === 0 && n < 2) return null;
  const starts: number[] = [...head];
  for (let i = 0; i < n; i++) {
    const a = Math.min(from + Math.round((i * (chunks - from)) / n), chunks - 2);
    if (a > (starts.at(-1) ?? -1)) starts.push(a);
  }
  if (starts.length < 2) return null;
  const tapered: number[] = [];
  starts.forEach((a, i) => {
    const size = (starts[i + 1] ?? chunks) - a;
    tapered.push(a);
    if (i >= starts.length - 2 && i >= head.length && size >= 4) tapered.push(a + Math.floor(size / 2));
  });
  return tapered;
}

const MAGIC = 0x31474e52; // 'RNG1'
const HEADER_WORDS = 8;

/**
 * A range's output as stored: 8 uint32 (magic, startFrame, final frames, head frames, tail frames,
 * song frames + 1 (0 = unknown), 0, 0), then float32 LE planar: the final samples (per stem left then
 * right, TRACKS order), the head likewise, the tail's Σ w·out likewise, and the tail's Σ w.
 */
export function rangeBytes(out: RangeOutput): Uint8Array {
  const finalFrames = out.final[0]![0]!.length;
  const headFrames = out.head?.[0]?.[0]?.length ?? 0;
  const tailFrames = out.tail?.weightSum.length ?? 0;
  const floats = 8 * finalFrames + 8 * headFrames + 9 * tailFrames;
  const buf = new ArrayBuffer(4 * (HEADER_WORDS + floats));
  new Uint32Array(buf, 0, HEADER_WORDS).set([MAGIC, out.startFrame, finalFrames, headFrames, tailFrames, out.songFrames === null ? 0 : out.songFrames + 1, 0, 0]);
  const f = new Float32Array(buf, 4 * HEADER_WORDS);
  let at = 0;
  const put = (a: Float32Array): void => {
    f.set(a, at);
    at += a.length;
  };
  for (const [l, r] of out.final) put(l!), put(r!);
  for (const [l, r] of out.head ?? []) put(l!), put(r!);
  if (out.tail) {
    for (const [l, r] of out.tail.acc) put(l!), put(r!);
    put(out.tail.weightSum);
  }
  return new Uint8Array(buf);
}

export type StoredRange = Omit<RangeOutput, 'stats'>;

export function readRange(bytes: Uint8Array): StoredRange {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const header = new Uint32Array(aligned.buffer, aligned.byteOffset, HEADER_WORDS);
  if (header[0] !== MAGIC) throw new Error('not a range output (bad magic)');
  const [, startFrame, finalFrames, headFrames, tailFrames, song] = header as unknown as number[];
  const f = new Float32Array(aligned.buffer, aligned.byteOffset + 4 * HEADER_WORDS, (aligned.byteLength - 4 * HEADER_WORDS) / 4);
  let at = 0;
  const take = (n: number): Float32Array => f.subarray(at, (at += n));
  const pairs = (n: number): Float32Array[][] => TRACKS.map(() => [take(n), take(n)]);
  const final = pairs(finalFrames!);
  const head = headFrames! > 0 ? pairs(headFrames!) : null;
  const tail = tailFrames! > 0 ? { acc: pairs(tailFrames!), weightSum: take(tailFrames!) } : null;
  return { startFrame: startFrame!, final, head, tail, songFrames: song! > 0 ? song! - 1 : null };
}

const WEIGHT = transitionWeight(SEGMENT);

/** Range i's piece: its overlap with range i-1 stitched (from `prev`'s tail), then its final samples. */
function pieceOf(prev: StoredRange | null, own: StoredRange): Float32Array[][] {
  if (!own.head || !prev?.tail) return own.final;
  const { tracks } = stitchOverlap(prev.tail, own.head, WEIGHT);
  return own.final.map((pair, s) =>
    pair.map((x, c) => {
      const joined = new Float32Array(tracks[s]![c]!.length + x.length);
      joined.set(tracks[s]![c]!);
      joined.set(x, tracks[s]![c]!.length);
      return joined;
    }),
  );
}

function attemptFor(deps: { config: Config; logger: Logger }, hash: string, signal: AbortSignal): StoreAttempt {
  const ms = deps.config.STORE_TIMEOUT_SEC * 1000;
  return (what, op) =>
    withRetry(() => withTimeout(op(), ms, `${what} got no answer within ${ms / 1000} s`, 'ETIMEDOUT'), {
      shouldRetry: isTransientStoreError,
      maxWaitMs: 5 * 60_000,
      signal,
      onRetry: (err: unknown, attempt: number, delay: number) => deps.logger.warn({ job: hash }, `${what} failed (${(err as Error).message}); retry ${attempt} in ${delay} ms`),
    });
}

/** A range separated and not yet stored: its output and what it cost, for the log line. */
export interface SeparatedRange {
  out: RangeOutput;
  firstChunk: number;
  endChunk: number | null;
  runSec: number;
  fetched: { mb: number; sec: number };
}

/**
 * One range, first step: separate its chunks (the upload fetched only when this worker has not kept
 * the song's decoder). The second, commitRange, may run beside this worker's next range.
 */
export async function separateRange(deps: RangeDeps, range: RangeItem, record: JobRecord, signal: AbortSignal): Promise<SeparatedRange> {
  const { store, separator } = deps;
  const split = record.split!;
  const attempt = attemptFor(deps, range.hash, signal);
  const firstChunk = split.chunks[range.index]!;
  const endChunk = split.chunks[range.index + 1] ?? null;
  // The upload is fetched only when this worker has not kept the song's decoder from its last range of it (engine.ts RangeInput).
  let fetched = { mb: 0, sec: 0 };
  const bytes = async (): Promise<Uint8Array> => {
    const t = performance.now();
    const b = await attempt('download', () => store.getUpload(range.hash));
    fetched = { mb: b.length / 1e6, sec: (performance.now() - t) / 1000 };
    return b;
  };
  const t1 = performance.now();
  const out = await separator.separateRange({ key: range.hash, bytes }, { firstChunk, endChunk }, { signal });
  return { out, firstChunk, endChunk, runSec: (performance.now() - t1) / 1000 - fetched.sec, fetched };
}

/**
 * One range, second step: store its output (and keep it for this worker's units), mark it done,
 * publish the pieces it made final. Returns `stitch` when it was the song's last range and the song
 * has no encoding units (the song is now this worker's to stitch), `encode` when it was the last
 * and the song's units, running beside the ranges, finish it.
 * Throws JobLost / JobGone when the range or the song is no longer this worker's.
 */
export async function commitRange(
  deps: RangeDeps,
  range: RangeItem,
  record: JobRecord,
  separated: SeparatedRange,
  signal: AbortSignal,
): Promise<'stitch' | 'encode' | 'finish' | 'done'> {
  const { store, queue, logger, workerId } = deps;
  const { out, firstChunk, endChunk, fetched } = separated;
  const split = record.split!;
  const attempt = attemptFor(deps, range.hash, signal);
  const t2 = performance.now();
  const stored = rangeBytes(out);
  await attempt(`range ${range.index} output`, () => store.putRange(range.hash, range.index, stored));
  deps.cache?.put(range.hash, range.index, stored);
  // bench/ranges.ts reads this line: per-chunk cost, transfer sizes and times
  logger.info(
    { job: range.hash },
    `range ${range.index + 1}/${split.chunks.length} (chunks ${firstChunk}–${endChunk ?? 'end'}, ${out.stats.chunks} run) separated in ${separated.runSec.toFixed(2)} s; ` +
      `upload ${fetched.mb.toFixed(2)} MB fetched in ${fetched.sec.toFixed(2)} s, output ${(stored.length / 1e6).toFixed(2)} MB stored in ${((performance.now() - t2) / 1000).toFixed(2)} s`,
  );
  const { outcome, done } = await queue.rangeDone(workerId, range);
  if (outcome === 'lost') throw new JobLost('another worker owns the range now');
  if (outcome === 'gone') {
    await store.removeRanges(range.hash).catch(() => 0);
    throw new JobGone('gone');
  }
  if (deps.config.PROGRESSIVE_PIECES) await publishPieces(deps, range, record, out, done, attempt).catch((err: Error) => logger.warn({ job: range.hash }, `pieces of range ${range.index} not published: ${err.message}`));
  return outcome;
}

/**
 * The pieces this range's finish made final (issue 23 item 4): piece i is range i with its
 * overlap with range i-1, final once both are done. The worker that saw both done publishes it —
 * its own piece when the range before is done, and the next range's piece when that one is done —
 * and range-piece-2.lua lists pieces over the song's contiguous prefix only.
 */
async function publishPieces(deps: RangeDeps, range: RangeItem, record: JobRecord, out: StoredRange, done: boolean[], attempt: StoreAttempt): Promise<void> {
  const { store, queue } = deps;
  const i = range.index;
  const n = record.split!.chunks.length;
  const publish = async (seq: number, prev: StoredRange | null, own: StoredRange): Promise<void> => {
    const tracks = pieceOf(prev, own);
    const end = own.startFrame + own.final[0]![0]!.length;
    await attempt(`piece ${seq}`, () => store.putPiece(range.hash, seq, pieceBytes(tracks.map(([l, r]) => [l!, r!] as const))));
    await queue.rangePiece({ ...range, index: seq }, end, seq === n - 1 ? end : (out.songFrames ?? null));
  };
  if (i === 0) await publish(0, null, out);
  else if (done[i - 1]) await publish(i, readRange(await attempt(`range ${i - 1} output`, () => store.getRange(range.hash, i - 1))), out);
  if (i + 1 < n && done[i + 1]) await publish(i + 1, out, readRange(await attempt(`range ${i + 1} output`, () => store.getRange(range.hash, i + 1))));
}

/**
 * The stitcher: reads the ranges' outputs in song order, stitches each edge, and encodes the stems
 * through the same encoders and streamed uploads as a whole run (stem-upload.ts). Returns the stems
 * uploaded and the time spent stitching and encoding.
 */
export async function stitchSong(
  deps: RangeDeps,
  hash: string,
  record: JobRecord,
  signal: AbortSignal,
): Promise<{ stems: Stem[]; files: StreamedFile[]; stitchSec: number; encodeSec: number; songFrames: number }> {
  const { store, separator } = deps;
  const split = record.split!;
  const attempt = attemptFor(deps, hash, signal);
  const output: OutputSpec = { formats: record.formats, stems: record.wanted };
  const staging = new UploadStaging();
  const uploads: StemUpload[] = [];
  let stitchMs = 0;
  let encodeMs = 0;
  let frames = 0;
  try {
    const open = (stem: Stem, format: OutputFormat): StemUpload => {
      const upload = new StemUpload(store, hash, stem, format, attempt, staging);
      uploads.push(upload);
      return upload;
    };
    const { files } = await separator.encodeToSinks(output, open, async (write, ready) => {
      let prev: StoredRange | null = null;
      for (let i = 0; i < split.chunks.length; i++) {
        if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
        const t0 = performance.now();
        const own = readRange(await attempt(`range ${i} output`, () => store.getRange(hash, i)));
        const tracks = pieceOf(prev, own);
        const t1 = performance.now();
        stitchMs += t1 - t0;
        // in blocks of a stride, as a whole run feeds its encoders
        const len = tracks[0]![0]!.length;
        for (let at = 0; at < len; at += split.stride) {
          for (let s = 0; s < tracks.length; s++) write(s, tracks[s]![0]!.subarray(at, at + split.stride), tracks[s]![1]!.subarray(at, at + split.stride));
          await ready();
        }
        encodeMs += performance.now() - t1;
        frames += len;
        prev = own;
      }
    });
    const t2 = performance.now();
    const uploaded: Stem[] = [];
    for (const [i, file] of files.entries()) {
      await uploads[i]!.finish(file.head);
      if (!uploaded.includes(file.stem)) uploaded.push(file.stem);
    }
    encodeMs += performance.now() - t2;
    return { stems: uploaded, files, stitchSec: stitchMs / 1000, encodeSec: encodeMs / 1000, songFrames: frames };
  } catch (err) {
    await Promise.all(uploads.map((u) => u.abort()));
    throw err;
  } finally {
    staging.remove();
  }
}

/** A range output's layout (rangeBytes): frames of each part and where its floats start. */
function layoutOf(header: Uint8Array): { final: number; head: number; tail: number; startFrame: number; songFrames: number | null } {
  const h = new Uint32Array(header.buffer.slice(header.byteOffset, header.byteOffset + 4 * HEADER_WORDS));
  if (h[0] !== MAGIC) throw new Error('not a range output (bad magic)');
  return { startFrame: h[1]!, final: h[2]!, head: h[3]!, tail: h[4]!, songFrames: h[5]! > 0 ? h[5]! - 1 : null };
}

const floats = (b: Uint8Array): Float32Array => {
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Float32Array(copy.buffer);
};

/**
 * Range i's output for some sources only (TRACKS indexes, in that order): byte ranges of the stored
 * object, so a stem's encoding unit fetches a quarter of it (three quarters for the instrumental).
 */
async function readRangeSources(deps: RangeDeps, hash: string, i: number, sources: readonly number[], attempt: StoreAttempt): Promise<StoredRange> {
  const get = async (offset: number, length: number): Promise<Uint8Array> =>
    deps.cache?.part(hash, i, offset, length) ?? (await attempt(`range ${i} output`, () => deps.store.getRangePart(hash, i, offset, length)));
  const l = layoutOf(await get(0, 4 * HEADER_WORDS));
  const base = 4 * HEADER_WORDS;
  const pair = async (start: number, frames: number, s: number): Promise<Float32Array[]> => {
    const both = floats(await get(base + 4 * (start + 2 * s * frames), 8 * frames));
    return [both.subarray(0, frames), both.subarray(frames)];
  };
  const final = await Promise.all(sources.map((s) => pair(0, l.final, s)));
  const head = l.head > 0 ? await Promise.all(sources.map((s) => pair(8 * l.final, l.head, s))) : null;
  const tail =
    l.tail > 0
      ? {
          acc: await Promise.all(sources.map((s) => pair(8 * l.final + 8 * l.head, l.tail, s))),
          weightSum: floats(await get(base + 4 * (8 * l.final + 8 * l.head + 8 * l.tail), 4 * l.tail)),
        }
      : null;
  return { startFrame: l.startFrame, final, head, tail, songFrames: l.songFrames };
}

/** Until range `i` of the song is done (polled: a unit waits on ranges that run elsewhere). */
async function untilRangeDone(deps: RangeDeps, hash: string, i: number, signal: AbortSignal): Promise<void> {
  for (;;) {
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    const state = await deps.queue.rangeState(hash, i);
    if (state === 'done') return;
    if (state === null) throw new JobGone('gone');
    await new Promise((r) => setTimeout(r, RANGE_POLL_MS));
  }
}

/** How often a waiting encoding unit looks whether the next range is done. */
const RANGE_POLL_MS = 200;

/**
 * One stem's encoding unit (issue 23 item 5), in a worker's side slot: stitches that stem (the
 * instrumental: its three parts) from the ranges' outputs in song order, each as soon as it is done,
 * and encodes it in the run's formats through the same encoders and streamed uploads as a whole run.
 * Several workers encode a split song's stems at once, while its ranges still run.
 */
export async function encodeStem(
  deps: RangeDeps,
  hash: string,
  record: JobRecord,
  stem: Stem,
  signal: AbortSignal,
): Promise<{ files: StreamedFile[]; stitchSec: number; encodeSec: number; waitSec: number }> {
  const { store, separator } = deps;
  const split = record.split!;
  const attempt = attemptFor(deps, hash, signal);
  const sources = stem === 'instrumental' ? INSTRUMENTAL_PARTS.map((t) => TRACKS.indexOf(t)) : [TRACKS.indexOf(stem as (typeof TRACKS)[number])];
  const staging = new UploadStaging();
  const uploads: StemUpload[] = [];
  let stitchMs = 0;
  let encodeMs = 0;
  let waitMs = 0;
  try {
    const open = (s: Stem, format: OutputFormat): StemUpload => {
      const upload = new StemUpload(store, hash, s, format, attempt, staging);
      uploads.push(upload);
      return upload;
    };
    const { files } = await separator.encodeToSinks({ formats: record.formats, stems: [stem] }, open, async (write, ready) => {
      let prev: StoredRange | null = null;
      for (let i = 0; i < split.chunks.length; i++) {
        const w0 = performance.now();
        await untilRangeDone(deps, hash, i, signal);
        const t0 = performance.now();
        waitMs += t0 - w0;
        const own = await readRangeSources(deps, hash, i, sources, attempt);
        const tracks = pieceOf(prev, own);
        const t1 = performance.now();
        stitchMs += t1 - t0;
        const len = tracks[0]![0]!.length;
        for (let at = 0; at < len; at += split.stride) {
          sources.forEach((s, j) => write(s, tracks[j]![0]!.subarray(at, at + split.stride), tracks[j]![1]!.subarray(at, at + split.stride)));
          await ready();
        }
        encodeMs += performance.now() - t1;
        prev = own;
      }
    });
    const t2 = performance.now();
    for (const [i, file] of files.entries()) await uploads[i]!.finish(file.head);
    encodeMs += performance.now() - t2;
    return { files, stitchSec: stitchMs / 1000, encodeSec: encodeMs / 1000, waitSec: waitMs / 1000 };
  } catch (err) {
    await Promise.all(uploads.map((u) => u.abort()));
    throw err;
  } finally {
    staging.remove();
  }
}
