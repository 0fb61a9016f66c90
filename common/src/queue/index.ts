import type { Redis } from 'ioredis';
import type { SubmitResult } from '../api.ts';
import type { Keys } from '../keys.ts';
import { parseClaimRecord, parseJobRecord, parseRangeItem, type Callback, type ClaimRecord, type JobRecord, type RangeItem } from '../job.ts';
import { IMPLICIT_TENANT } from '../tenants.ts';
import { DEFAULT_STEMS, TRACKS, isStem, orderedStems, type Stem } from '../tracks.ts';
import { DEFAULT_OUTPUT_FORMAT, isOutputFormat, type OutputFormat } from '../formats.ts';
import { runScript } from './scripts.ts';

export { scriptSource, type ScriptSource } from './scripts.ts';

/**
 * What a submission did: the submit result the API answers with (api.ts); `upload` when it would
 * queue a new run and the upload is not stored yet; or which quota refused it.
 */
export type EnqueueResult = SubmitResult | 'upload' | 'over_active' | 'over_minutes';
export type FailResult = 'retry' | 'dead' | 'lost' | 'gone';
/** `gone`: every claim was deleted while the worker ran it (it removes what it uploaded). */
export type OwnedResult = 'owned' | 'lost' | 'gone';
/**
 * `done` (this worker finished it), `lost` (finished, though a reaper had handed it on), `gone`
 * (every claim was deleted while it ran: remove what it uploaded), `superseded` (deleted and
 * submitted again meanwhile: the new run owns the objects).
 */
export type CompleteOutcome = 'done' | 'lost' | 'gone' | 'superseded';
export type ProgressOutcome = 'owned' | 'lost' | 'gone' | 'superseded';

/** What a worker has published of a running job (store.ts liveKey): pieces end to end from the song's start. */
export interface LiveProgress {
  readyFrames: number;
  totalFrames: number | null;
  /** Cumulative end frame of each piece this run published so far. */
  pieceEnds: readonly number[];
  /** The pieces the record lists are gone from the store (a new run of a finished song): list them anew. */
  reset?: boolean;
}

const now = (): string => new Date().toISOString();
const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
/** How long a day's usage counter lives (it is read only on its own day). */
const USAGE_TTL_SEC = 2 * 86_400;

export interface EnqueueInput {
  hash: string;
  /** Whose claim this is; the implicit tenant when keys are off. */
  tenant?: string;
  callback?: Callback | null;
  /** Why a callback given at submit will not be called (recorded with the claim). */
  callbackStatus?: string | null;
  sizeBytes: number;
  filename?: string | null;
  /** Audio length from the frame scan; counted against the daily quota. */
  audioSec?: number;
  /** The upload is in the store (a new run may be queued). */
  uploaded?: boolean;
  /** Quotas of this tenant (0 or absent = none). */
  maxActive?: number;
  maxAudioSecPerDay?: number;
  /** The stems' format (default mp3) and which stems to store (default the four model stems). */
  format?: OutputFormat;
  stems?: readonly Stem[];
}

/**
 * A submission's outcome with what it did to the output: `rerunOf`, the formats and stems a done
 * song had when this submission queued a new run for more; `extended`, a waiting run now makes
 * what was asked as well; `running`, the run in progress makes less than asked (submit again once
 * it is done).
 */
export interface SubmitOutcome {
  result: EnqueueResult;
  rerunOf?: { formats: OutputFormat[]; stems: Stem[] };
  extended?: true;
  running?: { formats: OutputFormat[]; stems: Stem[] };
}

function parseOutput(text: string): { formats: OutputFormat[]; stems: Stem[] } {
  const [f = '', st = ''] = text.split('|');
  return { formats: f.split(',').filter(isOutputFormat), stems: orderedStems(st.split(',').filter(isStem)) };
}

export interface QueueOptions {
  /** How long a finished or failed song is kept, in seconds (0 = forever). */
  retentionSec?: number;
  /**
   * How long a song that failed for good holds one of the active places of each tenant that sent it
   * (seconds; default a day, or until the tenant deletes it): failures are charged, so a tenant's
   * failing uploads stop at MAX_ACTIVE_JOBS_PER_KEY a day instead of filling Redis.
   */
  failedHoldSec?: number;
}

/** A failed song's active place is held this long by default (QueueOptions.failedHoldSec). */
export const FAILED_HOLD_SEC = 86_400;

/** The queue's options from the configuration (every service builds its queue the same way). */
export function queueOptions(config: { RETENTION_DAYS: number }): QueueOptions {
  return { retentionSec: config.RETENTION_DAYS * 86_400 };
}

/** What a worker took: a song, or one range of a split song (`range`; its processing list then holds `range.item`). */
export interface Claimed {
  hash: string;
  attempt: number;
  range?: RangeItem;
}

export interface ClaimedJob {
  job: JobRecord;
  claim: ClaimRecord;
}

/** A song as its watchers need it: `position` 0 = next to run, null when not waiting; a claim per tenant asked for. */
export interface WatchedJob {
  job: JobRecord | null;
  position: number | null;
  claims: (ClaimRecord | null)[];
}

/**
 * The job queue: songs wait in `toWorker` in fair order across tenants (lib/songs.lua) and workers
 * take from the right with BLMOVE into their own processing list, so a job is always in exactly
 * one list and a dead worker's jobs can be found.
 *
 * The work on a song (`job:<songhash>`) is shared; each tenant that submitted it holds a claim
 * (`claim:<songhash>:<tenant>`) with its own filename, callback and stems. This class is their only
 * writer, and every change is one Lua script (./lua) that also publishes the songhash on
 * `keys.events`: no change goes unannounced.
 */
export class Queue {
  readonly retentionSec: number;
  readonly failedHoldSec: number;

  constructor(
    readonly redis: Redis,
    readonly keys: Keys,
    opts: QueueOptions = {},
  ) {
    this.retentionSec = opts.retentionSec ?? 0;
    this.failedHoldSec = opts.failedHoldSec ?? FAILED_HOLD_SEC;
  }

  /**
   * One tenant's submission (submit-12.lua): joins the shared work or queues a new run in fair
   * order; tells also what it did to the song's formats and stems (`result` is the outcome).
   */
  async submit(input: EnqueueInput): Promise<SubmitOutcome> {
    const tenant = input.tenant ?? IMPLICIT_TENANT.id;
    const nowMs = Date.now();
    const k = this.keys;
    const reply = (await runScript(
      this.redis,
      'submit-12',
      [k.job(input.hash), k.toWorker, k.claims(input.hash), k.claim(input.hash, tenant), k.active(tenant), k.usage(tenant, utcDay(nowMs)), k.order, k.orderLast, k.vtime, k.expiries, k.events, k.library(tenant)],
      [
        input.hash,
        new Date(nowMs).toISOString(),
        tenant,
        input.callback ? JSON.stringify(input.callback) : '',
        input.callbackStatus ?? '',
        input.filename ?? '',
        input.sizeBytes,
        TRACKS.length,
        input.maxActive ?? 0,
        (input.audioSec ?? 0).toFixed(3),
        input.maxAudioSecPerDay ?? 0,
        USAGE_TTL_SEC,
        k.jobRoot,
        k.claimRoot,
        input.uploaded === false ? '0' : '1',
        this.retentionSec,
        nowMs,
        input.format ?? DEFAULT_OUTPUT_FORMAT,
        orderedStems(input.stems ?? DEFAULT_STEMS).join(','),
        this.failedHoldSec * 1000,
      ],
    )) as [EnqueueResult, number, string?];
    const [result, , note = ''] = reply;
    if (note === 'extended') return { result, extended: true };
    if (note.startsWith('running:')) return { result, running: parseOutput(note.slice('running:'.length)) };
    if (note !== '' && result === 'enqueued') return { result, rerunOf: parseOutput(note) };
    return { result };
  }

  /** Places the tenant's songs take (kept while it has a limit): queued or processing now, or failed for good within `failedHoldSec`. */
  async activeCount(tenant: string): Promise<number> {
    const hashes = await this.redis.smembers(this.keys.active(tenant));
    if (hashes.length === 0) return 0;
    const records = await Promise.all(hashes.map((h) => Promise.all([this.redis.hget(this.keys.job(h), 'state'), this.redis.hget(this.keys.job(h), 'failedMs')])));
    const since = Date.now() - this.failedHoldSec * 1000;
    return records.filter(([s, failedMs]) => s === 'queued' || s === 'processing' || (s === 'failed' && Number(failedMs ?? 0) > since)).length;
  }

  /** Seconds of audio the tenant submitted on the UTC day of `atMs`. */
  async usageSec(tenant: string, atMs = Date.now()): Promise<number> {
    return Number((await this.redis.get(this.keys.usage(tenant, utcDay(atMs)))) ?? 0);
  }

  /** Waiting jobs, in the order they will run (oldest first); with a tenant, only the songs it claims. A split song's ranges are not songs waiting (it is processing). */
  async waiting(tenant?: string): Promise<string[]> {
    const items = (await this.redis.lrange(this.keys.toWorker, 0, -1)).reverse().filter((item) => !item.includes('#'));
    if (tenant === undefined || items.length === 0) return items;
    const pipeline = this.redis.pipeline();
    for (const h of items) pipeline.exists(this.keys.claim(h, tenant));
    const owned = (await pipeline.exec()) ?? [];
    return items.filter((_, i) => owned[i]?.[1] === 1);
  }

  async length(): Promise<number> {
    return this.redis.llen(this.keys.toWorker);
  }

  /** 0 = next to run; null when not waiting. */
  async position(hash: string): Promise<number | null> {
    const [idx, len] = await Promise.all([this.redis.lpos(this.keys.toWorker, hash), this.redis.llen(this.keys.toWorker)]);
    return idx === null ? null : len - 1 - idx;
  }

  async getJob(hash: string): Promise<JobRecord | null> {
    return parseJobRecord(hash, await this.redis.hgetall(this.keys.job(hash)));
  }

  /** The state of a split song's range or encoding unit `index` (`queued`, `processing`, `done`), null if it has none. */
  async rangeState(hash: string, index: number): Promise<string | null> {
    const v = await this.redis.hget(this.keys.job(hash), `r${index}`);
    return v ? v.split('|')[0]! : null;
  }

  /** The song as one tenant may see it: null unless that tenant holds a claim on it. */
  async getClaimedJob(hash: string, tenant: string): Promise<ClaimedJob | null> {
    const reply = await this.redis.multi().hgetall(this.keys.job(hash)).hgetall(this.keys.claim(hash, tenant)).exec();
    const job = parseJobRecord(hash, (reply?.[0]?.[1] ?? {}) as Record<string, string>);
    const claim = parseClaimRecord((reply?.[1]?.[1] ?? {}) as Record<string, string>);
    return job && claim ? { job, claim } : null;
  }

  /**
   * One read for everyone watching a song (the event streams share it per job event): the job, its
   * place in the queue and the claims of the given tenants, in one transaction — 5 + tenants commands
   * (MULTI, HGETALL, LPOS, LLEN, one HGETALL per tenant, EXEC). Claims are in the order of `tenants`.
   */
  async watchedJob(hash: string, tenants: readonly string[]): Promise<WatchedJob> {
    const tx = this.redis.multi().hgetall(this.keys.job(hash)).lpos(this.keys.toWorker, hash).llen(this.keys.toWorker);
    for (const t of tenants) tx.hgetall(this.keys.claim(hash, t));
    const reply = (await tx.exec()) ?? [];
    const failed = reply.find(([err]) => err);
    if (failed) throw failed[0];
    const value = (i: number): unknown => reply[i]?.[1];
    const idx = value(1) as number | null;
    return {
      job: parseJobRecord(hash, (value(0) ?? {}) as Record<string, string>),
      position: idx === null ? null : (value(2) as number) - 1 - idx,
      claims: tenants.map((_, i) => parseClaimRecord((value(3 + i) ?? {}) as Record<string, string>)),
    };
  }

  /**
   * The tenant's songs, newest first: up to `limit` claimed before `beforeMs`. Entries whose claim
   * has expired are dropped from the library on the way.
   */
  async library(tenant: string, opts: { limit: number; beforeMs?: number }): Promise<ClaimedJob[]> {
    const key = this.keys.library(tenant);
    const max = opts.beforeMs === undefined ? '+inf' : `(${opts.beforeMs}`;
    const hashes = await this.redis.zrevrangebyscore(key, max, '-inf', 'LIMIT', 0, opts.limit);
    const found = await Promise.all(hashes.map((h) => this.getClaimedJob(h, tenant)));
    const stale = hashes.filter((_, i) => !found[i]);
    if (stale.length > 0) await this.redis.zrem(key, ...stale);
    return found.filter((c): c is ClaimedJob => c !== null);
  }

  async getClaim(hash: string, tenant: string): Promise<ClaimRecord | null> {
    return parseClaimRecord(await this.redis.hgetall(this.keys.claim(hash, tenant)));
  }

  /**
   * Takes a stem out of one tenant's view. `last` when no claim sees it any more (the caller
   * deletes the object), `hidden` when others still do, `absent` when this tenant had no such stem.
   */
  async removeStem(hash: string, tenant: string, track: Stem): Promise<'last' | 'hidden' | 'absent'> {
    const k = this.keys;
    return (await runScript(this.redis, 'remove-stem-4', [k.job(hash), k.claim(hash, tenant), k.claims(hash), k.events], [hash, track, now(), k.claimRoot])) as
      | 'last'
      | 'hidden'
      | 'absent';
  }

  /**
   * Records how a tenant's callback for the job's outcome went. `finishedAt` names that outcome:
   * when the job was deleted or run again since, or the claim is gone, nothing is written (false).
   */
  async setCallbackStatus(hash: string, tenant: string, status: string, finishedAt: string): Promise<boolean> {
    const k = this.keys;
    const written = await runScript(this.redis, 'set-callback-status-3', [k.job(hash), k.claim(hash, tenant), k.events], [hash, status, finishedAt, now()]);
    return written === 1;
  }

  /**
   * A tenant deletes its song: `last` when that was the last claim (the record is gone; the caller
   * removes the objects), `kept` when other tenants still claim it, `absent` when it had no claim.
   */
  async dropClaim(hash: string, tenant: string): Promise<'last' | 'kept' | 'absent'> {
    const k = this.keys;
    return (await runScript(
      this.redis,
      'drop-claim-11',
      [k.job(hash), k.claims(hash), k.claim(hash, tenant), k.active(tenant), k.toWorker, k.dead, k.order, k.expiries, k.events, k.library(tenant), k.toEncoder],
      [hash, tenant],
    )) as 'last' | 'kept' | 'absent';
  }

  /** Songs whose retention deadline has passed, oldest first. */
  async dueForExpiry(limit: number, atMs = Date.now()): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.expiries, '-inf', atMs, 'LIMIT', 0, limit);
  }

  /** Puts an expired song back on the sweep list (its objects could not be removed yet). */
  async retryExpiry(hash: string, atMs: number): Promise<void> {
    await this.redis.zadd(this.keys.expiries, atMs, hash);
  }

  /** Forgets a song past its retention (record and claims); true when the caller should remove its objects. */
  async expireSong(hash: string, atMs = Date.now()): Promise<boolean> {
    const k = this.keys;
    return (await runScript(this.redis, 'expire-song-5', [k.job(hash), k.claims(hash), k.expiries, k.dead, k.events], [hash, k.claimRoot, atMs, k.libraryRoot, k.active('')])) === 1;
  }

  /**
   * Songs failed for good whose upload is still in the store, oldest first (up to `limit`): the
   * newest entries of `dead` before the first one whose upload is gone (upload-gone-2.lua keeps
   * that order: the sweep marks oldest first and stops at a failure).
   */
  async failedUploads(limit: number): Promise<string[]> {
    const found: string[] = [];
    for (let start = 0; ; start += 100) {
      const page = await this.redis.lrange(this.keys.dead, start, start + 99);
      if (page.length === 0) break;
      const tx = this.redis.multi();
      for (const h of page) tx.hget(this.keys.job(h), 'state').hget(this.keys.job(h), 'uploadGone');
      const reply = (await tx.exec()) ?? [];
      for (let i = 0; i < page.length; i++) {
        if (reply[2 * i + 1]?.[1] === '1') return found.slice(-limit).reverse();
        if (reply[2 * i]?.[1] === 'failed') found.push(page[i]!);
      }
    }
    return found.slice(-limit).reverse();
  }

  /** Marks a failed song's upload gone (`true`), or takes the mark back when removing it failed; false when the song is no longer failed. */
  async markUploadGone(hash: string, gone: boolean): Promise<boolean> {
    return (await runScript(this.redis, 'upload-gone-2', [this.keys.job(hash), this.keys.events], [hash, gone ? '1' : '0'])) === 1;
  }

  async dead(): Promise<string[]> {
    return this.redis.lrange(this.keys.dead, 0, -1);
  }

  // ---- worker side ----

  /** Liveness of a worker; refreshed for as long as the process lives, not only while it works. */
  async heartbeat(workerId: string, ttlSec: number): Promise<void> {
    await runScript(this.redis, 'heartbeat-2', [this.keys.heartbeat(workerId), this.keys.workers], [workerId, ttlSec, now()]);
  }

  /** Stopping: the worker stays in the `workers` set until the reaper has seen its processing list empty. */
  async clearHeartbeat(workerId: string): Promise<void> {
    await this.redis.del(this.keys.heartbeat(workerId));
  }

  /**
   * Blocks up to timeoutSec for a job and moves it atomically into this worker's processing list.
   * `blocking` must be a connection of its own (it is blocked while waiting).
   */
  async claim(blocking: Redis, workerId: string, timeoutSec: number): Promise<Claimed | null> {
    const item = await blocking.blmove(this.keys.toWorker, this.keys.processing(workerId), 'RIGHT', 'LEFT', timeoutSec);
    if (item === null) return null;
    const range = parseRangeItem(item);
    // a range of a split song (range-start-5.lua); one of a song deleted or failed meanwhile is dropped
    if (range) return this.startRange(workerId, range);
    const hash = item;
    const attempt = Number(await runScript(this.redis, 'start-4', [this.keys.job(hash), this.keys.events, this.keys.order, this.keys.vtime], [hash, workerId, now()]));
    return { hash, attempt };
  }

  /**
   * Takes an encoding unit of a split song for a side slot (issue 23 item 5): from `toEncoder` into
   * this worker's processing list, then range-start-5.lua as for a range. Null on timeout or when the
   * unit's song was deleted, failed or run again.
   */
  async claimUnit(blocking: Redis, workerId: string, timeoutSec: number): Promise<Claimed | null> {
    const item = await blocking.blmove(this.keys.toEncoder, this.keys.processing(workerId), 'RIGHT', 'LEFT', timeoutSec);
    if (item === null) return null;
    const range = parseRangeItem(item);
    if (!range) {
      // only units are queued here; anything else is dropped rather than held
      await this.redis.lrem(this.keys.processing(workerId), 1, item);
      return null;
    }
    return this.startRange(workerId, range);
  }

  private async startRange(workerId: string, range: RangeItem): Promise<Claimed | null> {
    const k = this.keys;
    const [outcome, attempt] = (await runScript(this.redis, 'range-start-5', [k.job(range.hash), k.processing(workerId), k.events, k.order, k.vtime], [
      range.item,
      workerId,
      now(),
    ])) as ['owned' | 'gone', number?];
    return outcome === 'owned' ? { hash: range.hash, attempt: Number(attempt), range } : null;
  }

  /**
   * Splits the song this worker holds into ranges of consecutive chunks (split-8.lua): `chunks` are
   * the ranges' first chunks, in order (the first 0); each range waits in the queue in its tenant's
   * fair turn and the song leaves this worker's list. `encodeUnits` (one per stem, or 0: the last
   * range's worker encodes the song) wait in `toEncoder` for workers' side slots.
   */
  async split(
    workerId: string,
    hash: string,
    opts: { chunks: readonly number[]; stride: number; estimatedFrames: number; encodeUnits: number },
  ): Promise<'split' | 'lost' | 'gone'> {
    const k = this.keys;
    return (await runScript(this.redis, 'split-8', [k.processing(workerId), k.job(hash), k.toWorker, k.order, k.orderLast, k.vtime, k.events, k.toEncoder], [
      hash,
      opts.chunks.join(','),
      opts.stride,
      String(Date.now()),
      opts.estimatedFrames,
      now(),
      opts.encodeUnits,
    ])) as 'split' | 'lost' | 'gone';
  }

  /**
   * A unit of a split song is done (range-done-3.lua): a range of chunks (its output stored) or the
   * encoding of one stem. The last range: `encode` when the song's units (queued at the split) finish
   * it; `stitch` when it has none and this worker stitches and encodes every stem itself.
   * `finish`: the last unit, the song is now this worker's to record and complete (in its processing
   * list). `done` flags each chunk range. `lost`/`gone`: not this worker's, or the song was deleted or failed.
   */
  async rangeDone(workerId: string, range: RangeItem): Promise<{ outcome: 'stitch' | 'encode' | 'finish' | 'done' | 'lost' | 'gone'; done: boolean[] }> {
    const k = this.keys;
    const [outcome, ...flags] = (await runScript(this.redis, 'range-done-3', [k.processing(workerId), k.job(range.hash), k.events], [
      range.item,
      workerId,
      now(),
    ])) as ['stitch' | 'encode' | 'finish' | 'done' | 'lost' | 'gone', ...string[]];
    return { outcome, done: flags.map((f) => f === '1') };
  }

  /** Records a split song's piece (range-piece-2.lua): the record lists pieces over the contiguous prefix. */
  async rangePiece(range: RangeItem, endFrame: number, totalFrames: number | null): Promise<'owned' | 'gone'> {
    const k = this.keys;
    return (await runScript(this.redis, 'range-piece-2', [k.job(range.hash), k.events], [
      range.hash,
      range.splitId,
      range.index,
      endFrame,
      totalFrames === null ? '' : totalFrames,
      now(),
    ])) as 'owned' | 'gone';
  }

  /** A range failed (range-fail-11.lua): `retry` (queued again), `dead` (the song failed with the range's reason), `lost` or `gone`. */
  async failRange(workerId: string, range: RangeItem, error: string, opts: { retryable: boolean; maxAttempts: number }): Promise<FailResult> {
    const k = this.keys;
    const nowMs = Date.now();
    return (await runScript(
      this.redis,
      'range-fail-11',
      [k.processing(workerId), k.job(range.hash), k.toWorker, k.dead, k.events, k.order, k.orderLast, k.vtime, k.claims(range.hash), k.expiries, k.toEncoder],
      [range.item, workerId, error.slice(0, 2000), opts.maxAttempts, opts.retryable ? '1' : '0', new Date(nowMs).toISOString(), k.claimRoot, this.retentionSec, nowMs],
    )) as FailResult;
  }

  /**
   * Whether the work this worker holds is still its own — a read, for the worker's watch that stops
   * a cancelled run within a second or two: `owned`, `lost` (no longer in its list, or the range was
   * handed on), `gone` (the song's record is gone: deleted) or `superseded` (the song is no longer
   * processing: failed, or deleted and submitted again).
   */
  async runState(workerId: string, item: string): Promise<ProgressOutcome> {
    const range = parseRangeItem(item);
    const hash = range?.hash ?? item;
    // HGET each (the worker's Redis user has no HMGET: redis/base/users.acl)
    const job = this.keys.job(hash);
    const tx = this.redis.multi().lpos(this.keys.processing(workerId), item).hget(job, 'state').hget(job, 'splitId').hget(job, `r${range?.index ?? 0}`);
    const reply = (await tx.exec()) ?? [];
    const failed = reply.find(([err]) => err);
    if (failed) throw failed[0];
    const pos = reply[0]?.[1] as number | null;
    const [state, splitId, r] = [1, 2, 3].map((i) => reply[i]?.[1] as string | null);
    if (!state) return 'gone';
    if (state !== 'processing') return 'superseded';
    if (pos === null) return 'lost';
    if (range && (splitId !== range.splitId || (r ?? '').split('|')[1] !== workerId)) return 'lost';
    return 'owned';
  }

  /** Jobs a worker holds (after a restart with the same id, these are resumed first). */
  async held(workerId: string): Promise<string[]> {
    return this.redis.lrange(this.keys.processing(workerId), 0, -1);
  }

  async progress(workerId: string, hash: string, fraction: number): Promise<boolean> {
    return (await this.reportProgress(workerId, hash, fraction)) === 'owned';
  }

  /**
   * Progress with the progressive pieces published so far (progress-3.lua): `owned`, `lost`, or
   * `gone`/`superseded` (deleted while it ran: the job has left this worker's list; stop working on it).
   */
  async reportProgress(workerId: string, hash: string, fraction: number, live?: LiveProgress): Promise<ProgressOutcome> {
    return (await runScript(this.redis, 'progress-3', [this.keys.job(hash), this.keys.processing(workerId), this.keys.events], [
      hash,
      fraction.toFixed(4),
      now(),
      live ? String(live.readyFrames) : '',
      live?.totalFrames != null ? String(live.totalFrames) : '',
      live ? live.pieceEnds.join(',') : '',
      live?.reset ? '1' : '0',
    ])) as ProgressOutcome;
  }

  /** Records the uploaded stems, only while this worker owns the job and someone still claims it. */
  async recordStems(workerId: string, hash: string, stems: readonly Stem[]): Promise<OwnedResult> {
    return (await runScript(this.redis, 'record-stems-3', [this.keys.job(hash), this.keys.processing(workerId), this.keys.events], [
      hash,
      stems.join(','),
      now(),
    ])) as OwnedResult;
  }

  /**
   * Marks the job done and starts its retention. `tenants` are the claims whose callbacks report
   * this finish (read in the same step, so a claim made later sees `done` at submit instead).
   */
  async complete(workerId: string, hash: string, durationSec: number): Promise<{ outcome: CompleteOutcome; tenants: string[] }> {
    const k = this.keys;
    const nowMs = Date.now();
    const [outcome, ...tenants] = (await runScript(
      this.redis,
      'complete-6',
      [k.processing(workerId), k.job(hash), k.toWorker, k.events, k.claims(hash), k.expiries],
      [hash, new Date(nowMs).toISOString(), durationSec.toFixed(3), k.claimRoot, this.retentionSec, nowMs],
    )) as [CompleteOutcome, ...string[]];
    return { outcome, tenants };
  }

  /**
   * The minutes quota from the decoded length (charge-decoded-4.lua): the tenants charged at submit
   * for this run are charged today what the header's length left out. `over`: every one of them is
   * now past `maxAudioSecPerDay` (the caller fails the job); `usedSec` is each one's count today.
   */
  async chargeDecoded(
    workerId: string,
    hash: string,
    decodedSec: number,
    opts: { maxAudioSecPerDay: number; atMs?: number },
  ): Promise<{ outcome: 'lost' | 'unchanged' | 'charged' | 'over'; extraSec: number; usedSec: Record<string, number> }> {
    const k = this.keys;
    const atMs = opts.atMs ?? Date.now();
    const [head, tail] = k.usage('\u0000', utcDay(atMs)).split('\u0000') as [string, string];
    const [outcome, extra = '0', ...used] = (await runScript(
      this.redis,
      'charge-decoded-4',
      [k.job(hash), k.processing(workerId), k.claims(hash), k.events],
      [hash, decodedSec.toFixed(3), k.claimRoot, head, tail, USAGE_TTL_SEC, opts.maxAudioSecPerDay, IMPLICIT_TENANT.id, new Date(atMs).toISOString()],
    )) as ['lost' | 'unchanged' | 'charged' | 'over', string?, ...string[]];
    const usedSec = Object.fromEntries(used.map((u) => [u.slice(0, u.lastIndexOf('=')), Number(u.slice(u.lastIndexOf('=') + 1))]));
    return { outcome, extraSec: Number(extra), usedSec };
  }

  async fail(workerId: string, hash: string, error: string, opts: { retryable: boolean; maxAttempts: number }): Promise<FailResult> {
    const k = this.keys;
    const nowMs = Date.now();
    const reply = await runScript(
      this.redis,
      'fail-10',
      [k.processing(workerId), k.job(hash), k.toWorker, k.dead, k.events, k.order, k.orderLast, k.vtime, k.claims(hash), k.expiries],
      [hash, error.slice(0, 2000), opts.maxAttempts, opts.retryable ? '1' : '0', new Date(nowMs).toISOString(), k.claimRoot, this.retentionSec, nowMs],
    );
    return reply as FailResult;
  }

  /** Hands a job or a range back (shutdown before it finished); the attempt does not count. */
  async release(workerId: string, hash: string): Promise<boolean> {
    const range = parseRangeItem(hash);
    if (range) {
      const k = this.keys;
      return (
        (await runScript(this.redis, 'range-release-7', [k.processing(workerId), k.job(range.hash), k.toWorker, k.events, k.order, k.vtime, k.toEncoder], [range.item, workerId, now()])) === 1
      );
    }
    const owned = await runScript(
      this.redis,
      'release-6',
      [this.keys.processing(workerId), this.keys.job(hash), this.keys.toWorker, this.keys.events, this.keys.order, this.keys.vtime],
      [hash, now()],
    );
    return owned === 1;
  }

  /**
   * Returns the jobs of workers whose heartbeat expired to the queue (or to `dead`); the counts
   * include ranges of split songs, also given apart (`ranges`). `mayReap` is
   * asked before each worker: the caller stops as soon as it can no longer judge heartbeats.
   */
  async reap(
    maxAttempts: number,
    mayReap: () => boolean = () => true,
  ): Promise<{ requeued: number; dead: number; workers: string[]; ranges: { requeued: number; dead: number } }> {
    const ids = await this.redis.smembers(this.keys.workers);
    const result = { requeued: 0, dead: 0, workers: [] as string[], ranges: { requeued: 0, dead: 0 } };
    for (const id of ids) {
      if (!mayReap()) break;
      const k = this.keys;
      const nowMs = Date.now();
      // the ranges it held first (reap-ranges-9.lua), then its songs
      const ranges = (await runScript(
        this.redis,
        'reap-ranges-9',
        [k.processing(id), k.heartbeat(id), k.toWorker, k.dead, k.events, k.order, k.vtime, k.expiries, k.toEncoder],
        [id, k.jobRoot, maxAttempts, new Date(nowMs).toISOString(), k.claimsRoot, k.claimRoot, this.retentionSec, nowMs],
      )) as [number, number];
      result.requeued += ranges[0];
      result.dead += ranges[1];
      result.ranges.requeued += ranges[0];
      result.ranges.dead += ranges[1];
      const reply = (await runScript(
        this.redis,
        'reap-9',
        [k.processing(id), k.heartbeat(id), k.toWorker, k.dead, k.workers, k.events, k.order, k.vtime, k.expiries],
        [id, k.jobRoot, maxAttempts, new Date(nowMs).toISOString(), k.claimsRoot, k.claimRoot, this.retentionSec, nowMs],
      )) as [number, number];
      result.requeued += reply[0];
      result.dead += reply[1];
      if (reply[0] + reply[1] + ranges[0] + ranges[1] > 0) result.workers.push(id);
    }
    return result;
  }
}
