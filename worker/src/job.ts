import type { Logger } from 'pino';
import { TRACKS, isTransientStoreError, withRetry, withTimeout, type Config, type ObjectStore, type Queue, type Stem, type Track } from '@msaas/common';
import type { OutputSpec, StemFile } from './separation/index.ts';

type SeparateCall = { onProgress?: (fraction: number) => void; signal?: AbortSignal };

/** What the job loop needs from the separation engine (the real one, or a stand-in in tests). */
export interface Separator {
  /** The lab's output: the four model stems as VBR MP3. */
  separateMp3(mp3: Uint8Array, opts?: SeparateCall): Promise<{ stems: Record<Track, Uint8Array> }>;
  /** Any stems in any formats (the engine has it; a stand-in without it serves only the lab's output). */
  separateToFiles?(bytes: Uint8Array, output: OutputSpec, opts?: SeparateCall): Promise<{ files: StemFile[] }>;
}

const isLabOutput = (o: OutputSpec): boolean =>
  o.formats.length === 1 && o.formats[0] === 'mp3' && o.stems.length === TRACKS.length && TRACKS.every((t) => o.stems.includes(t));

/** Separates to the files the job's record asks for: `formats` × `wanted` (the lab's four MP3s when it names none). */
async function separateFor(separator: Separator, bytes: Uint8Array, output: OutputSpec, opts: SeparateCall): Promise<StemFile[]> {
  if (separator.separateToFiles && !isLabOutput(output)) return (await separator.separateToFiles(bytes, output, opts)).files;
  if (!isLabOutput(output)) throw new Error(`this separator makes only the four MP3 stems, not ${output.formats.join('+')} ${output.stems.join(',')}`);
  const { stems } = await separator.separateMp3(bytes, opts);
  return TRACKS.map((stem) => ({ stem, format: 'mp3' as const, bytes: stems[stem] }));
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
 * One job: download the upload, separate with progress, upload the four stems, record them.
 * Marking done and releasing the job is the caller's (so a shutdown can hand it back instead).
 * Throws JobLost when the job is no longer this worker's: its new owner records and finishes it.
 */
export async function runJob(deps: JobDeps, hash: string, signal: AbortSignal): Promise<{ stems: Stem[] }> {
  const { store, queue, separator, logger, workerId } = deps;
  const timeoutMs = deps.config.STORE_TIMEOUT_SEC * 1000;
  const retrying = (what: string) => ({
    shouldRetry: isTransientStoreError,
    maxWaitMs: STORE_OUTAGE_BUDGET_MS,
    signal,
    onRetry: (err: unknown, attempt: number, delay: number) =>
      logger.warn({ job: hash }, `${what} failed (${(err as Error).message}); retry ${attempt} in ${delay} ms`),
  });

  // What this run makes: read once it is ours (submissions while it waited may have added to it).
  const record = await queue.getJob(hash);
  const output: OutputSpec = { formats: record?.formats ?? ['mp3'], stems: record?.wanted ?? TRACKS };
  const mp3 = await withRetry(timed(() => store.getUpload(hash), timeoutMs, 'download'), retrying('download'));
  if (signal.aborted) throw new JobAborted('shutdown');
  logger.info({ job: hash }, `separating ${(mp3.length / 1024).toFixed(0)} kB`);

  let lastWrite = 0;
  let pending: Promise<unknown> = Promise.resolve();
  const files = await separateFor(separator, mp3, output, {
    signal,
    onProgress: (fraction) => {
      const now = Date.now();
      if (now - lastWrite < 250 && fraction < 1) return;
      lastWrite = now;
      pending = pending.then(() => queue.progress(workerId, hash, Math.min(0.95, fraction * 0.95)).catch(() => undefined));
    },
  });
  await pending;
  if (signal.aborted) throw new JobAborted('shutdown');

  const uploaded: Stem[] = [];
  let done = 0;
  for (const { stem, format, bytes } of files) {
    const what = `upload of ${stem}${format === 'mp3' ? '' : ` (${format})`}`;
    await withRetry(timed(() => store.putStem(hash, stem, bytes, format), timeoutMs, what), retrying(what));
    if (!uploaded.includes(stem)) uploaded.push(stem);
    done++;
    await queue.progress(workerId, hash, 0.95 + (0.05 * done) / files.length).catch(() => undefined);
  }
  // 'gone': every claim was deleted while it ran; completing tells the worker what to clean up.
  if ((await queue.recordStems(workerId, hash, uploaded)) === 'lost') throw new JobLost('another worker owns the job now');
  return { stems: uploaded };
}
