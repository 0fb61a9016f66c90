import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { DIRECT_PREFIX, INCOMING_PREFIX, type ObjectStore, type Queue } from '@msaas/common';

export interface RetentionDeps {
  queue: Queue;
  store: ObjectStore;
  logger: Logger;
  /** How long a done or failed song's progressive pieces outlive its finish (LIVE_PIECES_GRACE_SEC; default 300). */
  livePiecesGraceSec?: number;
  /** DIRECT_UPLOAD_EXPIRY_SEC: a direct upload not submitted this long after its URL was made is removed. */
  directUploadExpirySec?: number;
}

/** An upload staged under `incoming/` (streaming to the store) this old was left by a rest that stopped mid-upload. */
const INCOMING_MAX_AGE_SEC = 3600;

/** Songs handled per sweep; the rest wait for the next one. */
const BATCH = 100;

/**
 * Removes songs past their retention: Redis expires the records by TTL, and this sweep (one rest
 * replica at a time, by a lock in Redis) removes their stems and upload from the store, for stores
 * without lifecycle rules (the embedded one). A song queued again since is left alone
 * (expire-song-5.lua). When the store cannot be reached the song is retried at the next sweep.
 */
export class RetentionSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly deps: RetentionDeps,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One sweep, unless one is running here or on another replica. Returns the songs removed. */
  sweep(): Promise<number> {
    this.running ??= this.sweepLocked().finally(() => (this.running = null));
    return this.running;
  }

  private async sweepLocked(): Promise<number> {
    const { queue, logger } = this.deps;
    const token = randomBytes(8).toString('hex');
    const lockMs = Math.max(this.intervalMs, 10_000);
    try {
      if ((await queue.redis.set(queue.keys.sweepLock, token, 'PX', lockMs, 'NX')) !== 'OK') return 0;
      let removed = 0;
      for (const hash of await queue.dueForExpiry(BATCH)) if (await this.expire(hash)) removed++;
      if (removed > 0) logger.info(`retention: removed ${removed} song${removed === 1 ? '' : 's'} past their retention`);
      await this.dropFailedUploads();
      await sweepLivePieces(this.deps);
      await sweepRangeOutputs(this.deps);
      await sweepStaged(this.deps);
      if ((await queue.redis.get(queue.keys.sweepLock)) === token) await queue.redis.del(queue.keys.sweepLock);
      return removed;
    } catch (err) {
      logger.warn(`retention sweep failed: ${(err as Error).message}`);
      return 0;
    }
  }

  /**
   * Uploads of songs that failed for good leave the store at the first sweep after the failure
   * (a failed song keeps its record for the retention period, not its upload: issue 22 item 4).
   * Oldest first; a store error stops the walk (the song is retried at the next sweep).
   */
  private async dropFailedUploads(): Promise<void> {
    const { queue, store, logger } = this.deps;
    for (const hash of await queue.failedUploads(BATCH)) {
      if (!(await queue.markUploadGone(hash, true))) continue;
      try {
        await store.removeUpload(hash);
      } catch (err) {
        await queue.markUploadGone(hash, false);
        logger.warn({ job: hash }, `retention: upload of a failed song not removed yet (${(err as Error).message}); retrying at the next sweep`);
        return;
      }
    }
  }

  private async expire(hash: string): Promise<boolean> {
    const { queue, store, logger } = this.deps;
    if (!(await queue.expireSong(hash))) return false;
    try {
      await Promise.all([store.removeAllStems(hash), store.removeUpload(hash), store.removePieces(hash), store.removeRanges(hash)]);
      return true;
    } catch (err) {
      // The record is gone already; put the song back on the list so its objects go next time.
      await queue.retryExpiry(hash, Date.now() + this.intervalMs);
      logger.warn({ job: hash }, `retention: objects not removed yet (${(err as Error).message}); retrying at the next sweep`);
      return false;
    }
  }
}

/**
 * Progressive pieces (`live/<songhash>/`, issue 21) go when their song's record is gone (deleted,
 * past retention) or once the song is done or failed for longer than the grace, which lets live
 * streams that started before the end finish. Songs queued or running again keep theirs. Returns
 * the songs whose pieces were removed.
 */
export async function sweepLivePieces(deps: RetentionDeps, nowMs = Date.now()): Promise<number> {
  const { queue, store, logger } = deps;
  const graceMs = (deps.livePiecesGraceSec ?? 300) * 1000;
  let removed = 0;
  for (const hash of await store.liveSongs(BATCH * 10)) {
    const job = await queue.getJob(hash);
    const finished = job && (job.state === 'done' || job.state === 'failed') ? Date.parse(job.finishedAt ?? '') : Number.NaN;
    if (job && !(finished <= nowMs - graceMs)) continue;
    try {
      await store.removePieces(hash);
      removed++;
    } catch (err) {
      logger.warn({ job: hash }, `retention: pieces not removed yet (${(err as Error).message}); retrying at the next sweep`);
    }
  }
  if (removed > 0) logger.info(`retention: removed the progressive pieces of ${removed} song${removed === 1 ? '' : 's'}`);
  return removed;
}

/**
 * Staged uploads nobody will submit (issue 24): direct uploads (`direct/<id>`) whose URL expired
 * (written at most DIRECT_UPLOAD_EXPIRY_SEC after the URL was made, so older than twice that is past
 * any submit), and streamed uploads (`incoming/…`) a rest replica left when it stopped mid-upload.
 * Returns how many objects were removed.
 */
export async function sweepStaged(deps: RetentionDeps, nowMs = Date.now()): Promise<number> {
  const { store, logger } = deps;
  const expirySec = deps.directUploadExpirySec ?? 3600;
  let removed = 0;
  for (const [prefix, ageSec] of [
    [DIRECT_PREFIX, 2 * expirySec],
    [INCOMING_PREFIX, INCOMING_MAX_AGE_SEC],
  ] as const) {
    for (const key of await store.staleStaged(prefix, new Date(nowMs - ageSec * 1000), BATCH)) {
      try {
        await store.removeStaged(key);
        removed++;
      } catch (err) {
        logger.warn(`retention: staged upload ${key} not removed yet (${(err as Error).message}); retrying at the next sweep`);
        return removed;
      }
    }
  }
  if (removed > 0) logger.info(`retention: removed ${removed} staged upload${removed === 1 ? '' : 's'} nobody submitted`);
  return removed;
}

/**
 * A split song's range outputs (`ranges/<songhash>/`, issue 23) are intermediate: the stitcher
 * removes them when the song is done and the worker that failed it when it fails; what a crash or a
 * delete left goes here, once the song is no longer queued or processing (or has no record).
 * Returns the songs whose range outputs were removed.
 */
export async function sweepRangeOutputs(deps: RetentionDeps): Promise<number> {
  const { queue, store, logger } = deps;
  let removed = 0;
  for (const hash of await store.rangeSongs(BATCH * 10)) {
    const job = await queue.getJob(hash);
    if (job && (job.state === 'queued' || job.state === 'processing')) continue;
    try {
      await store.removeRanges(hash);
      removed++;
    } catch (err) {
      logger.warn({ job: hash }, `retention: range outputs not removed yet (${(err as Error).message}); retrying at the next sweep`);
    }
  }
  if (removed > 0) logger.info(`retention: removed the range outputs of ${removed} song${removed === 1 ? '' : 's'}`);
  return removed;
}
