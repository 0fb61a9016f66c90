import type { Logger } from 'pino';
import { TRACKS, isTransientStoreError, withRetry, withTimeout, type Config, type ObjectStore, type Queue, type Track } from '@msaas/common';

/** What the job loop needs from the separation engine (the real one, or a stand-in in tests). */
export interface Separator {
  separateMp3(mp3: Uint8Array, opts?: { onProgress?: (fraction: number) => void; signal?: AbortSignal }): Promise<{ stems: Record<Track, Uint8Array> }>;
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
export async function runJob(deps: JobDeps, hash: string, signal: AbortSignal): Promise<{ stems: Track[] }> {
  const { store, queue, separator, logger, workerId } = deps;
  const timeoutMs = deps.config.STORE_TIMEOUT_SEC * 1000;
  const retrying = (what: string) => ({
    shouldRetry: isTransientStoreError,
    maxWaitMs: STORE_OUTAGE_BUDGET_MS,
    signal,
    onRetry: (err: unknown, attempt: number, delay: number) =>
      logger.warn({ job: hash }, `${what} failed (${(err as Error).message}); retry ${attempt} in ${delay} ms`),
  });

  const mp3 = await withRetry(timed(() => store.getUpload(hash), timeoutMs, 'download'), retrying('download'));
  if (signal.aborted) throw new JobAborted('shutdown');
  logger.info({ job: hash }, `separating ${(mp3.length / 1024).toFixed(0)} kB`);

  let lastWrite = 0;
  let pending: Promise<unknown> = Promise.resolve();
  const { stems } = await separator.separateMp3(mp3, {
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

  const uploaded: Track[] = [];
  for (const track of TRACKS) {
    const bytes = stems[track];
    await withRetry(timed(() => store.putStem(hash, track, bytes), timeoutMs, `upload of ${track}`), retrying(`upload of ${track}`));
    uploaded.push(track);
    await queue.progress(workerId, hash, 0.95 + (0.05 * uploaded.length) / TRACKS.length).catch(() => undefined);
  }
  // 'gone': every claim was deleted while it ran; completing tells the worker what to clean up.
  if ((await queue.recordStems(workerId, hash, uploaded)) === 'lost') throw new JobLost('another worker owns the job now');
  return { stems: uploaded };
}
