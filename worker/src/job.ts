import type { Logger } from 'pino';
import { DEFAULT_OUTPUT_FORMAT, DEFAULT_STEMS, isTransientStoreError, withRetry, withTimeout, type Config, type ObjectStore, type OutputFormat, type ProgressOutcome, type Queue, type Stem, type Track } from '@msaas/common';
import type { OutputSink, OutputSpec, SeparatedPiece, StemFile, StreamedFile } from './separation/index.ts';
import { PiecePublisher } from './pieces.ts';
import { StemUpload, UploadStaging, type StoreAttempt } from './stem-upload.ts';
import { chargeDecodedLength } from './decoded-charge.ts';
import { planSplit, type RangeSeparator } from './ranges.ts';
import { UPLOAD_HEAD_BYTES, decodesFromStore, wholeUpload, type UploadSource } from './separation/upload-source.ts';

type SeparateCall = { onProgress?: (fraction: number) => void; signal?: AbortSignal; onPiece?: (piece: SeparatedPiece) => void | Promise<void> };

/** What the job loop needs from the separation engine (the real one, or a stand-in in tests). */
export interface Separator {
  /** Any stems in any formats, each file whole at the end. */
  separateToFiles(bytes: Uint8Array, output: OutputSpec, opts?: SeparateCall): Promise<{ files: StemFile[] }>;
  /** Any stems in any formats, each file streamed to a sink as it is encoded, its head returned at the end (the engine has it). */
  separateToSinks?(
    input: Uint8Array | UploadSource,
    output: OutputSpec,
    open: (stem: Stem, format: OutputFormat) => OutputSink,
    opts?: SeparateCall,
  ): Promise<{ files: StreamedFile[] }>;
  /** One range of a song split over workers, the stitcher's encoders and the chunk stride (the engine has them: ranges.ts). */
  separateRange?: RangeSeparator['separateRange'];
  encodeToSinks?: RangeSeparator['encodeToSinks'];
  stride?: number;
}

/** The separator's range side, when it has one. */
export function rangeSeparator(separator: Separator): RangeSeparator | null {
  const { separateRange, encodeToSinks, stride } = separator;
  return separateRange && encodeToSinks && stride ? { separateRange, encodeToSinks, stride } : null;
}

/** Separates to the files the job's record asks for: `formats` × `wanted` (the lab's four MP3s when it names none). */
async function separateFor(separator: Separator, bytes: Uint8Array, output: OutputSpec, opts: SeparateCall): Promise<StemFile[]> {
  return (await separator.separateToFiles(bytes, output, opts)).files;
}

export interface JobDeps {
  config: Config;
  queue: Queue;
  store: ObjectStore;
  separator: Separator;
  logger: Logger;
  workerId: string;
  /** True for errors that are the audio's fault (not worth a retry). */
  isBadAudio: (err: unknown) => boolean;
}

export class JobAborted extends Error {
  override name = 'JobAborted';
}

/** The job was handed on (the reaper judged this worker dead) before its stems were recorded. */
export class JobLost extends Error {
  override name = 'JobLost';
}

/**
 * Every claim was deleted while it ran (`gone`), or it was deleted and submitted again
 * (`superseded`): the job has left this worker's list (progress-3.lua) and the work stops.
 */
export class JobGone extends Error {
  override name = 'JobGone';
  constructor(readonly outcome: 'gone' | 'superseded') {
    super(outcome === 'gone' ? 'every claim on the song was deleted while it ran' : 'the song was deleted and submitted again while it ran');
  }
}

/** How long a failing job still lets the pieces it separated reach the store and the record. */
const PIECES_SETTLE_MS = 10_000;

/** How long an object-store outage may last inside one job before the job itself fails (and is retried). */
const STORE_OUTAGE_BUDGET_MS = 5 * 60_000;

/**
 * A store that accepts a connection and then never answers (a partition, a wedged server) would
 * hold the job forever while the heartbeat says all is well: give up on the request and retry.
 */
function timed<T>(op: () => Promise<T>, ms: number, what: string): () => Promise<T> {
  return () => withTimeout(op(), ms, `${what} got no answer within ${ms / 1000} s`, 'ETIMEDOUT');
}

/**
 * One job: download the upload, separate with progress, upload the stems it asks for (`wanted` × `formats`), record them.
 * Marking done and releasing the job is the caller's (so a shutdown can hand it back instead).
 * Throws JobLost when the job is no longer this worker's: its new owner records and finishes it.
 */
export async function runJob(deps: JobDeps, hash: string, signal: AbortSignal, watch?: AbortSignal): Promise<{ stems: Stem[]; split?: number }> {
  const { store, queue, separator, logger, workerId } = deps;
  const timeoutMs = deps.config.STORE_TIMEOUT_SEC * 1000;
  const retrying = (what: string) => ({
    shouldRetry: isTransientStoreError,
    maxWaitMs: STORE_OUTAGE_BUDGET_MS,
    signal,
    onRetry: (err: unknown, attempt: number, delay: number) =>
      logger.warn({ job: hash }, `${what} failed (${(err as Error).message}); retry ${attempt} in ${delay} ms`),
  });

  const attempt: StoreAttempt = (what, op) => withRetry(timed(op, timeoutMs, what), retrying(what));

  // What this run makes: read once it is ours (submissions while it waited may have added to it).
  const record = await queue.getJob(hash);
  const output: OutputSpec = { formats: record?.formats ?? [DEFAULT_OUTPUT_FORMAT], stems: record?.wanted ?? DEFAULT_STEMS };
  // The upload: its size and head first. A WAV (the largest upload for its length) is then read from
  // the store as it decodes, a window at a time (upload-source.ts); other formats' decoders take the
  // whole file (issue 22 #7).
  const size = await attempt('download', () => store.statUpload(hash));
  const head = await attempt('download', () => store.getUploadPart(hash, 0, Math.min(size, UPLOAD_HEAD_BYTES)));
  const source: UploadSource = { size, head, read: (start, end) => attempt('download', () => store.getUploadPart(hash, start, end - start)) };
  const readAsDecoded = separator.separateToSinks !== undefined && decodesFromStore(source);
  const upload = readAsDecoded ? null : await wholeUpload(source);
  if (signal.aborted) throw new JobAborted('shutdown');
  // The minutes quota from the decoded length, before any inference (issue 22 #5, decoded-charge.ts; a WAV's header length is exact).
  await chargeDecodedLength(deps, hash, upload ?? head);

  // A long song is split into ranges any worker takes (issue 23, ranges.ts); this worker goes on to the next item.
  const ranges = rangeSeparator(separator);
  const splitSec = deps.config.SPLIT_MIN_SEC;
  if (ranges && splitSec > 0) {
    const record = await queue.getJob(hash);
    const audioSec = record?.audioSec ?? 0;
    const chunks = audioSec > splitSec ? planSplit(Math.round(audioSec * 44_100), ranges.stride, deps.config.SPLIT_RANGE_CHUNKS) : null;
    if (chunks) {
      // one encoding unit per stem, run beside the ranges (ranges.ts encodeStem); a single stem is encoded by the last range's worker
      const wanted = record?.wanted.length ?? 0;
      const encodeUnits = wanted > 1 ? wanted : 0;
      const outcome = await queue.split(workerId, hash, { chunks, stride: ranges.stride, estimatedFrames: Math.round(audioSec * 44_100), encodeUnits });
      if (outcome === 'lost') throw new JobLost('another worker owns the job now');
      if (outcome === 'gone') throw new JobGone('gone');
      logger.info({ job: hash }, `split into ${chunks.length} ranges (${audioSec.toFixed(1)} s > SPLIT_MIN_SEC=${splitSec})`);
      return { stems: [], split: chunks.length };
    }
  }
  logger.info({ job: hash }, `separating ${(size / 1024).toFixed(0)} kB${readAsDecoded ? ' (read from the store as it decodes)' : ''}`);

  // The job stops as soon as a progress transition says it is not ours any more (issue 22 #8).
  const notOurs = new AbortController();
  const onNotOwned = (outcome: Exclude<ProgressOutcome, 'owned'>): void => {
    if (notOurs.signal.aborted) return;
    logger.info({ job: hash }, outcome === 'lost' ? 'job handed on to another worker: stopping' : `job ${outcome} while it ran: stopping`);
    notOurs.abort(outcome === 'lost' ? new JobLost('another worker owns the job now') : new JobGone(outcome));
  };
  // the worker's watch (worker.ts) found the job deleted or handed on between progress transitions
  if (watch) {
    const onWatch = (): void => onNotOwned(watch.reason as Exclude<ProgressOutcome, 'owned'>);
    if (watch.aborted) onWatch();
    else watch.addEventListener('abort', onWatch, { once: true });
  }
  const jobSignal = AbortSignal.any([signal, notOurs.signal]);
  const stopIfNotOurs = (): void => {
    if (notOurs.signal.aborted) throw notOurs.signal.reason as Error;
    if (signal.aborted) throw new JobAborted('shutdown');
  };
  const report = async (fraction: number): Promise<void> => {
    const outcome = await queue.reportProgress(workerId, hash, fraction).catch(() => 'owned' as const);
    if (outcome !== 'owned') onNotOwned(outcome);
  };

  // Progressive pieces (issue 21). The record may list pieces of an earlier run the store no longer
  // has (a finished song run again for more formats after the pieces' grace): then the list starts anew.
  let pieces: PiecePublisher | null = null;
  if (deps.config.PROGRESSIVE_PIECES && separator.separateToSinks) {
    const listed = record?.pieceEnds.length ?? 0;
    const reset = listed > 0 && (await attempt('list of pieces', () => store.listPieces(hash)).catch(() => [] as number[])).length < listed;
    pieces = new PiecePublisher({ store, queue, logger, workerId, hash, attempt, reset, onNotOwned });
  }

  let lastWrite = 0;
  let pending: Promise<unknown> = Promise.resolve();
  const call: SeparateCall = {
    signal: jobSignal,
    onProgress: (fraction) => {
      const scaled = Math.min(0.95, fraction * 0.95);
      if (pieces?.active) return pieces.setFraction(scaled); // each piece's report carries it
      const now = Date.now();
      if (now - lastWrite < 250 && fraction < 1) return;
      lastWrite = now;
      pending = pending.then(() => report(scaled));
    },
    ...(pieces ? { onPiece: (piece: SeparatedPiece) => pieces.add(piece) } : {}),
  };

  const uploaded: Stem[] = [];
  const uploads: StemUpload[] = [];
  const staging = separator.separateToSinks ? new UploadStaging() : null;
  try {
    if (separator.separateToSinks && staging) {
      // Each file streams to the store as it is encoded; its head goes in place at the end.
      const open = (stem: Stem, format: OutputFormat): StemUpload => {
        const upload = new StemUpload(store, hash, stem, format, attempt, staging);
        uploads.push(upload);
        return upload;
      };
      const { files } = await separator.separateToSinks(upload ?? source, output, open, call);
      await Promise.all([pending, pieces?.flush()]);
      stopIfNotOurs();
      for (const [i, file] of files.entries()) {
        await uploads[i]!.finish(file.head);
        if (!uploaded.includes(file.stem)) uploaded.push(file.stem);
        await report(0.95 + (0.05 * (i + 1)) / files.length);
        stopIfNotOurs();
      }
    } else {
      const files = await separateFor(separator, upload!, output, call);
      await pending;
      stopIfNotOurs();
      for (const [i, { stem, format, bytes }] of files.entries()) {
        const what = `upload of ${stem}${format === 'mp3' ? '' : ` (${format})`}`;
        await withRetry(timed(() => store.putStem(hash, stem, bytes, format), timeoutMs, what), retrying(what));
        if (!uploaded.includes(stem)) uploaded.push(stem);
        await report(0.95 + (0.05 * (i + 1)) / files.length);
        stopIfNotOurs();
      }
    }
  } catch (err) {
    if (notOurs.signal.aborted || signal.aborted) pieces?.stop();
    else await pieces?.settle(PIECES_SETTLE_MS);
    await Promise.all(uploads.map((u) => u.abort()));
    if (notOurs.signal.aborted) throw notOurs.signal.reason as Error;
    throw err;
  } finally {
    staging?.remove();
  }
  // 'gone': every claim was deleted while it ran; completing tells the worker what to clean up.
  if ((await queue.recordStems(workerId, hash, uploaded)) === 'lost') throw new JobLost('another worker owns the job now');
  return { stems: uploaded };
}
