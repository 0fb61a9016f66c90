import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { STEMS, parseRangeItem, withRetry, type Config, type ObjectStore, type Claimed, type ProgressOutcome, type Queue, type RangeItem, type Stem } from '@msaas/common';
import { fireCallback } from './callback.ts';
import { Heartbeat } from './heartbeat.ts';
import { JobAborted, JobGone, JobLost, rangeSeparator, runJob, type Separator } from './job.ts';
import { commitRange, encodeStem, separateRange, stitchSong, type SeparatedRange } from './ranges.ts';
import { RangeCache } from './range-cache.ts';
import type { WorkerMetrics } from './metrics.ts';

export interface WorkerDeps {
  config: Config;
  queue: Queue;
  /** The queue on a connection of its own that fails fast while Redis is down (default: `queue`). */
  reaper?: Queue;
  /** A connection of its own for the blocking BLMOVE. */
  blocking: Redis;
  /** Another for the side slots' BLMOVE of encoding units (issue 23 item 5); without it, this worker runs none. */
  unitBlocking?: Redis;
  store: ObjectStore;
  separator: Separator;
  isBadAudio: (err: unknown) => boolean;
  logger: Logger;
  metrics: WorkerMetrics;
  resolveHost?: (host: string) => Promise<string[]>;
}

/** How often a worker looks whether its running song or range was deleted (cancel stops it within about this plus one pipeline step). */
const WATCH_MS = 250;

/** Where a piece of work runs: the main slot (one song or range at a time) or a side slot (encoding units of split songs). */
type Slot = 'main' | 'side';

interface Running {
  hash: string;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * The job loop: one song or range at a time, and beside it up to ENCODE_SLOTS encoding units of split
 * songs (side slots: each mostly waits for ranges, then encodes one stem). A heartbeat key proves
 * this process alive for as long as it runs; any worker reaps the work of workers whose heartbeat expired.
 */
export class Worker {
  readonly id: string;
  private stopping = false;
  private current: Running | null = null;
  /** Encoding units (and a split song's finish after its last unit) running in side slots, by item. */
  private readonly side = new Map<string, Running>();
  private readonly cache: RangeCache;
  private unitLoopDone: Promise<void> = Promise.resolve();
  /** Set when a stop's grace period ran out: work that starts from then on is aborted at once. */
  private graceOver = false;
  private timers: NodeJS.Timeout[] = [];
  private heartbeat: Heartbeat | null = null;
  /** Since when our Redis connection has been up without a break (null while it is down). */
  private connectedSince: number | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly callbacks = new Set<Promise<void>>();
  jobsDone = 0;

  constructor(private readonly deps: WorkerDeps) {
    this.id = deps.config.WORKER_ID;
    this.cache = new RangeCache(deps.config.RANGE_CACHE_MB * 1e6);
  }

  status(): { healthy: boolean; detail: Record<string, unknown> } {
    const age = Date.now() - (this.heartbeat?.lastOk ?? 0);
    return {
      healthy: !this.stopping && age < this.deps.config.HEARTBEAT_TTL_SEC * 1000,
      detail: { worker: this.id, job: this.current?.hash ?? null, units: [...this.side.keys()], heartbeatAgeMs: age, jobsDone: this.jobsDone },
    };
  }

  async start(): Promise<void> {
    const { config, logger } = this.deps;
    const { keys } = this.deps.queue;
    this.heartbeat = new Heartbeat({
      url: config.REDIS_URL,
      heartbeatKey: keys.heartbeat(this.id),
      workersKey: keys.workers,
      workerId: this.id,
      ttlSec: config.HEARTBEAT_TTL_SEC,
      intervalMs: Math.max(1000, (config.HEARTBEAT_TTL_SEC * 1000) / 3),
    });
    await this.heartbeat.started();
    const { redis } = this.deps.reaper ?? this.deps.queue;
    this.connectedSince = redis.status === 'ready' ? Date.now() : null;
    redis.on('ready', () => (this.connectedSince = Date.now()));
    redis.on('close', () => (this.connectedSince = null));
    this.timers.push(setInterval(() => void this.reap(), config.REAP_INTERVAL_SEC * 1000));
    logger.info(`worker ${this.id} ready`);
    this.loopDone = this.loop();
  }

  private async reap(): Promise<void> {
    // Judge others' heartbeats only after one full TTL of connection: when Redis comes back from an
    // outage longer than the TTL, every key has expired, and live workers need a moment to beat again.
    const since = this.connectedSince;
    const mayReap = (): boolean => since !== null && this.connectedSince === since && Date.now() - since >= this.deps.config.HEARTBEAT_TTL_SEC * 1000;
    if (!mayReap()) return;
    try {
      const r = await (this.deps.reaper ?? this.deps.queue).reap(this.deps.config.MAX_ATTEMPTS, mayReap);
      const m = this.deps.metrics.reaped;
      m.inc({ kind: 'range', outcome: 'requeued' }, r.ranges.requeued);
      m.inc({ kind: 'range', outcome: 'dead' }, r.ranges.dead);
      m.inc({ kind: 'song', outcome: 'requeued' }, r.requeued - r.ranges.requeued);
      m.inc({ kind: 'song', outcome: 'dead' }, r.dead - r.ranges.dead);
      if (r.requeued + r.dead > 0) {
        this.deps.logger.warn(`reaped jobs of stopped workers ${r.workers.join(', ')}: ${r.requeued} back in the queue, ${r.dead} dead`);
      }
    } catch {
      // next round
    }
  }

  private async loop(): Promise<void> {
    const { queue, blocking, logger } = this.deps;
    // Work left in our processing list by an earlier life with the same id comes first: its songs
    // run again here; its ranges and units go back to their lists (range-release-7.lua), since a unit
    // resumed before the range it waits for would wait for ever.
    for (const item of await queue.held(this.id).catch(() => [] as string[])) {
      if (this.stopping) return;
      const range = parseRangeItem(item);
      if (range) {
        const released = await queue.release(this.id, item).catch(() => false);
        logger.info({ job: range.hash }, `${released ? 'handed back' : 'dropped'} a range or unit this worker held before it restarted`);
        continue;
      }
      logger.info({ job: item }, 'resuming a job this worker held before it restarted');
      await this.process(item);
    }
    if (this.deps.unitBlocking && rangeSeparator(this.deps.separator)) this.unitLoopDone = this.unitLoop(this.deps.unitBlocking);
    while (!this.stopping) {
      let claimed: Claimed | null = null;
      try {
        claimed = await queue.claim(blocking, this.id, 2);
      } catch (err) {
        if (this.stopping) break;
        logger.warn(`claim failed (${(err as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (!claimed) continue;
      if (this.stopping) {
        await queue.release(this.id, claimed.range?.item ?? claimed.hash).catch(() => undefined);
        break;
      }
      await this.process(claimed.range?.item ?? claimed.hash, claimed.attempt);
    }
  }

  /** The side slots: encoding units of split songs, up to ENCODE_SLOTS at once beside the main slot's work. */
  private async unitLoop(unitBlocking: Redis): Promise<void> {
    const { queue, logger, config } = this.deps;
    while (!this.stopping) {
      if (this.side.size >= config.ENCODE_SLOTS) {
        await Promise.race([...this.side.values()].map((u) => u.done));
        continue;
      }
      let claimed: Claimed | null = null;
      try {
        claimed = await queue.claimUnit(unitBlocking, this.id, 2);
      } catch (err) {
        if (this.stopping) break;
        logger.warn(`unit claim failed (${(err as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (!claimed?.range) continue;
      if (this.stopping) {
        await queue.release(this.id, claimed.range.item).catch(() => undefined);
        break;
      }
      void this.processRange(claimed.range, claimed.attempt, 'side');
    }
  }

  /** What runs now, in the main slot and the side slots. */
  private running(): Running[] {
    return [...(this.current ? [this.current] : []), ...this.side.values()];
  }

  /** Registers work in its slot; the returned function ends it (and says the worker is idle when nothing runs). */
  private enter(slot: Slot, key: string): { abort: AbortController; leave: () => void } {
    const abort = new AbortController();
    let resolveDone!: () => void;
    const running: Running = { hash: key, abort, done: new Promise<void>((r) => (resolveDone = r)) };
    if (this.graceOver) abort.abort();
    if (slot === 'main') this.current = running;
    else this.side.set(key, running);
    this.deps.metrics.busy.set(1);
    return {
      abort,
      leave: () => {
        if (slot === 'main') this.current = null;
        else this.side.delete(key);
        this.deps.metrics.busy.set(this.current || this.side.size > 0 ? 1 : 0);
        resolveDone();
      },
    };
  }

  /**
   * Looks every WATCH_MS whether the work is still this worker's (runState, a read): a song or range
   * deleted, failed or handed on stops within about that long instead of at the next progress
   * transition (issue 24 item 5). Returns the function that ends the watch.
   */
  private watch(item: string, onNotOwned: (outcome: Exclude<ProgressOutcome, 'owned'>) => void): () => void {
    let busy = false;
    let ended = false;
    const timer = setInterval(() => {
      if (busy || ended) return;
      busy = true;
      this.deps.queue
        .runState(this.id, item)
        .then((state) => {
          if (state === 'owned' || ended) return;
          ended = true;
          clearInterval(timer);
          onNotOwned(state);
        })
        .catch(() => undefined)
        .finally(() => (busy = false));
    }, WATCH_MS);
    return () => {
      ended = true;
      clearInterval(timer);
    };
  }

  private async process(item: string, attempt?: number, slot: Slot = 'main'): Promise<void> {
    const range = parseRangeItem(item);
    if (range) return this.processRange(range, attempt, slot);
    const hash = item;
    const { queue, logger, metrics, config } = this.deps;
    const { abort, leave } = this.enter(slot, hash);
    const started = Date.now();
    const watched = new AbortController();
    const endWatch = this.watch(hash, (outcome) => {
      // a deleted or re-submitted song leaves this worker's list in the same step that says so (progress-3.lua)
      const settle = outcome === 'lost' ? Promise.resolve(outcome) : queue.reportProgress(this.id, hash, 0).catch(() => outcome);
      void settle.then((o) => o !== 'owned' && watched.abort(o));
    });
    try {
      logger.info({ job: hash }, `job claimed${attempt ? ` (attempt ${attempt})` : ''}`);
      const record = await queue.getJob(hash);
      const ranges = rangeSeparator(this.deps.separator);
      let result: { stems: Stem[]; split?: number };
      const split = record?.split;
      if (record && split && split.encodeUnits > 0 && split.encodesDone >= split.encodeUnits) {
        // every stem of this split song is encoded and stored (range-done-3.lua gave the finish to this worker)
        if ((await queue.recordStems(this.id, hash, record.wanted)) === 'lost') throw new JobLost('another worker owns the job now');
        result = { stems: [...record.wanted] };
      } else if (record?.split && ranges && record.ranges?.every((r) => r.state === 'done')) {
        // every range of this split song is done and its encoding was not spread: this worker stitches and encodes it
        const stitched = await stitchSong({ ...this.deps, workerId: this.id, separator: ranges }, hash, record, AbortSignal.any([abort.signal, watched.signal]));
        metrics.stitchSeconds.observe(stitched.stitchSec);
        metrics.encodeSeconds.observe(stitched.encodeSec);
        logger.info({ job: hash }, `stitched ${record.ranges.length} ranges in ${stitched.stitchSec.toFixed(2)} s, encoded and uploaded in ${stitched.encodeSec.toFixed(2)} s`);
        if ((await queue.recordStems(this.id, hash, stitched.stems)) === 'lost') throw new JobLost('another worker owns the job now');
        result = { stems: stitched.stems };
      } else {
        result = await runJob({ ...this.deps, workerId: this.id }, hash, abort.signal, watched.signal);
      }
      endWatch();
      if (result.split) {
        metrics.jobs.inc({ result: 'split' });
        return;
      }
      const seconds = (Date.now() - started) / 1000;
      const { outcome, tenants } = await this.untilRedis(() => queue.complete(this.id, hash, seconds));
      this.jobsDone++;
      metrics.jobs.inc({ result: 'done' });
      metrics.duration.observe(seconds);
      if (outcome === 'gone') {
        logger.info({ job: hash }, `job done in ${seconds.toFixed(1)} s, but every claim was deleted meanwhile: removing its objects`);
        this.dropObjects(hash, result.stems);
      } else if (outcome === 'superseded') {
        logger.info({ job: hash }, `job done in ${seconds.toFixed(1)} s, but the song was deleted and submitted again meanwhile; the new run records it`);
      } else {
        logger.info({ job: hash }, `job done in ${seconds.toFixed(1)} s (${result.stems.join(', ')})`);
        if (outcome === 'done') this.dropUpload(hash);
        if (record?.split) this.dropRanges(hash);
        for (const tenant of tenants) this.callback(hash, tenant);
      }
    } catch (thrown) {
      // the watch stopped a stitch: say why as runJob does
      const why = watched.signal.reason as ProgressOutcome | undefined;
      const err = watched.signal.aborted && !(thrown instanceof JobGone || thrown instanceof JobLost) && why !== undefined && why !== 'owned'
        ? why === 'lost' ? new JobLost('another worker owns the job now') : new JobGone(why)
        : thrown;
      if (err instanceof JobAborted || abort.signal.aborted) {
        const released = await queue.release(this.id, hash).catch(() => false);
        logger.info({ job: hash }, released ? 'job handed back to the queue (shutdown)' : 'job abandoned at shutdown; the reaper returns it');
        metrics.jobs.inc({ result: 'released' });
      } else if (err instanceof JobGone) {
        // The job already left this worker's list (progress-3.lua). Deleted: what it stored goes too;
        // submitted again: the new run owns the same object names.
        logger.info({ job: hash }, `job stopped: ${err.message}${err.outcome === 'gone' ? '; removing what it stored' : ''}`);
        if (err.outcome === 'gone') this.dropObjects(hash, STEMS);
        metrics.jobs.inc({ result: err.outcome });
      } else if (err instanceof JobLost) {
        logger.warn({ job: hash }, 'job handed on to another worker while this one ran it (its heartbeat lapsed); the new owner finishes it');
        metrics.jobs.inc({ result: 'lost' });
      } else {
        const badAudio = this.deps.isBadAudio(err);
        const reason = badAudio ? `bad audio: ${(err as Error).message}` : `${(err as Error).name}: ${(err as Error).message}`;
        const outcome = await this.untilRedis(() => queue.fail(this.id, hash, reason, { retryable: !badAudio, maxAttempts: config.MAX_ATTEMPTS }));
        metrics.jobs.inc({ result: outcome === 'retry' ? 'retry' : 'failed' });
        logger[outcome === 'retry' ? 'warn' : 'error']({ job: hash }, `job ${outcome === 'retry' ? 'failed, will retry' : 'failed'}: ${reason}`);
      }
    } finally {
      endWatch();
      leave();
    }
  }

  /**
   * One range of a split song (ranges.ts): separated in the main slot, then stored and marked done
   * in a side slot while the main slot takes the next item (`separated` given: that second step);
   * the song's last range is stitched at once when the song has no encoding units. Or, in a side
   * slot, one stem's encoding unit; the last one finishes the song there.
   */
  private async processRange(range: RangeItem, attempt?: number, slot: Slot = 'main', separated?: SeparatedRange): Promise<void> {
    const { queue, logger, metrics, config } = this.deps;
    const { abort, leave } = this.enter(slot, range.item);
    const watched = new AbortController();
    const endWatch = this.watch(range.item, (outcome) => watched.abort(outcome === 'lost' ? new JobLost('another worker owns the range now') : new JobGone(outcome)));
    let label = `range ${range.index + 1}`;
    let stitch = false;
    try {
      const record = await queue.getJob(range.hash);
      const chunkRanges = record?.split?.chunks.length ?? Number.POSITIVE_INFINITY;
      if (range.index >= chunkRanges) label = `encoding of ${record?.wanted[range.index - chunkRanges] ?? 'a stem'}`;
      if (!separated) logger.info({ job: range.hash }, `${label} claimed${attempt ? ` (attempt ${attempt})` : ''}`);
      const separator = rangeSeparator(this.deps.separator);
      if (!record?.split || !separator) throw new JobGone(record ? 'superseded' : 'gone');
      const deps = { ...this.deps, workerId: this.id, separator, cache: this.cache };
      const signal = AbortSignal.any([abort.signal, watched.signal]);
      let outcome: Awaited<ReturnType<typeof commitRange>>;
      if (range.index >= chunkRanges) {
        // one stem's encoding unit (split-8.lua queued one per stem with the ranges): it follows them as they are done
        const stem = record.wanted[range.index - chunkRanges];
        if (!stem) throw new Error(`no stem for encoding unit ${range.index - chunkRanges}`);
        const encoded = await encodeStem(deps, range.hash, record, stem, signal);
        metrics.stitchSeconds.observe(encoded.stitchSec);
        metrics.encodeSeconds.observe(encoded.encodeSec);
        logger.info(
          { job: range.hash },
          `${stem} stitched in ${encoded.stitchSec.toFixed(2)} s, encoded and uploaded in ${encoded.encodeSec.toFixed(2)} s (${record.formats.join(', ')}; ${encoded.waitSec.toFixed(1)} s waiting for ranges)`,
        );
        const done = await queue.rangeDone(this.id, range);
        if (done.outcome === 'lost') throw new JobLost('another worker owns the unit now');
        if (done.outcome === 'gone') throw new JobGone('gone');
        outcome = done.outcome as typeof outcome;
      } else {
        const out = separated ?? (await separateRange(deps, range, record, signal));
        if (slot === 'main') {
          // the output's upload and the done transition go on in a side slot (registered before this returns):
          // the main slot takes the next item meanwhile
          void this.processRange(range, attempt, 'side', out);
          return;
        }
        outcome = await commitRange(deps, range, record, out, signal);
      }
      metrics.ranges.inc({ result: 'done' });
      const next = { stitch: '; the last range: stitching the song', encode: "; the last range: the stems' encoding units finish the song", finish: '; the last unit: completing the song', done: '' };
      logger.info({ job: range.hash }, `${label} done${next[outcome]}`);
      stitch = outcome === 'stitch' || outcome === 'finish';
    } catch (err) {
      const reason: unknown = watched.signal.aborted ? watched.signal.reason : err;
      if (abort.signal.aborted && !watched.signal.aborted) {
        const released = await queue.release(this.id, range.item).catch(() => false);
        logger.info({ job: range.hash }, released ? `${label} handed back to the queue (shutdown)` : `${label} abandoned at shutdown; the reaper returns it`);
        metrics.ranges.inc({ result: 'released' });
      } else if (reason instanceof JobGone) {
        // the song was deleted, failed or run again: the item leaves this worker's list, the outputs go
        await queue.release(this.id, range.item).catch(() => false);
        logger.info({ job: range.hash }, `${label} stopped: ${reason.message}`);
        if (reason.outcome === 'gone') this.dropObjects(range.hash, STEMS);
        metrics.ranges.inc({ result: 'gone' });
      } else if (reason instanceof JobLost) {
        logger.warn({ job: range.hash }, `${label} handed on to another worker while this one ran it`);
        metrics.ranges.inc({ result: 'lost' });
      } else {
        const badAudio = this.deps.isBadAudio(err);
        const why = badAudio ? `bad audio: ${(err as Error).message}` : `${(err as Error).name}: ${(err as Error).message}`;
        const outcome = await this.untilRedis(() => queue.failRange(this.id, range, why, { retryable: !badAudio, maxAttempts: config.MAX_ATTEMPTS }));
        metrics.ranges.inc({ result: outcome === 'retry' ? 'retry' : 'failed' });
        logger[outcome === 'retry' ? 'warn' : 'error']({ job: range.hash }, `${label} ${outcome === 'retry' ? 'failed, will retry' : 'failed; the song failed with it'}: ${why}`);
        if (outcome === 'dead') this.dropRanges(range.hash);
      }
    } finally {
      endWatch();
      leave();
    }
    if (stitch && !this.stopping) await this.process(range.hash, undefined, slot);
    else if (stitch) await queue.release(this.id, range.hash).catch(() => undefined);
  }

  /** A split song's range outputs (`ranges/<songhash>/`): intermediate, gone once the song ends. */
  private dropRanges(hash: string): void {
    this.cache.dropSong(hash);
    this.deps.store.removeRanges(hash).catch((err: Error) => this.deps.logger.warn({ job: hash }, `range outputs not removed: ${err.message}`));
  }

  /** Finishing a job must reach Redis; while it is down, wait for it (the stems are safe in the store). */
  private untilRedis<T>(op: () => Promise<T>): Promise<T> {
    return withRetry(op, {
      shouldRetry: () => true,
      maxWaitMs: Number.POSITIVE_INFINITY,
      onRetry: (err, attempt) => {
        if (attempt === 1) this.deps.logger.warn(`redis unavailable (${(err as Error).message}); waiting to record the job's outcome`);
      },
    });
  }

  /**
   * The upload in bucket `queue` has served its purpose once the job is recorded done by the worker
   * that owned it (a worker that lost the job to the reaper leaves it to the new owner). A
   * re-separation request uploads the song again. Failed jobs keep theirs for inspection.
   */
  private dropUpload(hash: string): void {
    const { store, logger } = this.deps;
    store.removeUpload(hash).catch((err: Error) => logger.warn({ job: hash }, `upload not removed from the queue bucket: ${err.message}`));
  }

  /** A song every claim of which was deleted while it ran: its stems and upload leave the store. */
  private dropObjects(hash: string, stems: readonly Stem[]): void {
    const { store, logger } = this.deps;
    Promise.all([...stems.map((t) => store.removeStem(hash, t)), store.removeUpload(hash), store.removePieces(hash), store.removeRanges(hash)]).catch((err: Error) =>
      logger.warn({ job: hash }, `objects of a deleted song not removed: ${err.message}`),
    );
  }

  /** Fire-and-forget, one per claim: the callback's retries never hold up the queue. */
  private callback(hash: string, tenant: string): void {
    const { queue, config, logger } = this.deps;
    const p = (async () => {
      const claimed = await queue.getClaimedJob(hash, tenant);
      const callback = claimed?.claim.callback;
      const finishedAt = claimed?.job.finishedAt;
      if (!claimed || !callback || !finishedAt) return;
      const { job } = claimed;
      const status = await fireCallback(callback, {
        allowPrivate: config.CALLBACK_ALLOW_PRIVATE,
        allowedPorts: config.CALLBACK_ALLOWED_PORTS,
        dnsTimeoutMs: config.DNS_TIMEOUT_MS,
        timeoutMs: config.CALLBACK_TIMEOUT_MS,
        retries: config.CALLBACK_RETRIES,
        headers: { 'X-MSaaS-Songhash': hash, 'X-MSaaS-State': job.state },
        secret: config.CALLBACK_SECRET,
        ...(this.deps.resolveHost ? { resolve: this.deps.resolveHost } : {}),
      });
      const recorded = await queue.setCallbackStatus(hash, tenant, status, finishedAt);
      logger.info({ job: hash, tenant }, `callback ${status}${recorded ? '' : ' (not recorded: the job was removed or run again since)'}`);
    })()
      .catch((err: Error) => logger.warn({ job: hash }, `callback bookkeeping failed: ${err.message}`))
      .finally(() => this.callbacks.delete(p));
    this.callbacks.add(p);
  }

  /**
   * Graceful stop: no new claims; the running job may finish within the grace period, otherwise
   * it is aborted and handed back to the front of the queue.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.deps.blocking.disconnect();
    this.deps.unitBlocking?.disconnect();
    if (this.running().length > 0) {
      const timer = setTimeout(() => {
        this.graceOver = true;
        for (const r of this.running()) r.abort.abort();
      }, graceMs);
      // a range's upload or a split song's finish may follow in a side slot: wait until every slot is empty
      while (this.running().length > 0) await Promise.race(this.running().map((r) => r.done));
      clearTimeout(timer);
    }
    await Promise.all([this.loopDone.catch(() => undefined), this.unitLoopDone.catch(() => undefined)]);
    await Promise.race([Promise.allSettled([...this.callbacks]), new Promise((r) => setTimeout(r, 3000))]);
    for (const t of this.timers) clearInterval(t);
    await this.heartbeat?.stop();
    await this.deps.queue.clearHeartbeat(this.id).catch(() => undefined);
  }
}
