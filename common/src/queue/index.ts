import type { Redis } from 'ioredis';
import type { SubmitResult } from '../api.ts';
import type { Keys } from '../keys.ts';
import { parseJobRecord, type Callback, type JobRecord } from '../job.ts';
import type { Track } from '../tracks.ts';
import { runScript } from './scripts.ts';

export { scriptSource, type ScriptSource } from './scripts.ts';

/** What an enqueue did: the submit result the API answers with (api.ts). */
export type EnqueueResult = SubmitResult;
export type FailResult = 'retry' | 'dead' | 'lost';

const now = (): string => new Date().toISOString();

export interface EnqueueInput {
  hash: string;
  callback?: Callback | null;
  /** Why a callback given at submit will not be called (recorded with the job). */
  callbackStatus?: string | null;
  sizeBytes: number;
  filename?: string | null;
  /** Re-run a job whose record says done (its stems were removed). */
  rerun?: boolean;
}

/**
 * The job queue: LPUSH onto `toWorker`, workers take from the right with BLMOVE into their own
 * processing list, so a job is always in exactly one list and a dead worker's jobs can be found.
 *
 * The job record `job:<songhash>` has this class as its only writer, and every change is one Lua
 * script (./lua) that also publishes the songhash on `keys.events`: no change goes unannounced.
 */
export class Queue {
  constructor(
    readonly redis: Redis,
    readonly keys: Keys,
  ) {}

  /** 'enqueued' when a job was created; otherwise the song is already waiting, running or separated. */
  async enqueue(input: EnqueueInput): Promise<EnqueueResult> {
    const reply = await runScript(this.redis, 'enqueue-3', [this.keys.job(input.hash), this.keys.toWorker, this.keys.events], [
      input.hash,
      now(),
      input.callback ? JSON.stringify(input.callback) : '',
      input.sizeBytes,
      input.filename ?? '',
      input.rerun ? '1' : '0',
      input.callbackStatus ?? '',
    ]);
    return reply as EnqueueResult;
  }

  /** Waiting jobs, in the order they will run (oldest first). */
  async waiting(): Promise<string[]> {
    const items = await this.redis.lrange(this.keys.toWorker, 0, -1);
    return items.reverse();
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

  /** A stem was removed from the store: the record stops listing it. False when it listed no such stem. */
  async removeStem(hash: string, track: Track): Promise<boolean> {
    const changed = await runScript(this.redis, 'remove-stem-2', [this.keys.job(hash), this.keys.events], [hash, track, now()]);
    return changed === 1;
  }

  /**
   * Records how the callback for the job's outcome went. `finishedAt` names that outcome: when the
   * job was deleted or run again since, nothing is written (false).
   */
  async setCallbackStatus(hash: string, status: string, finishedAt: string): Promise<boolean> {
    const written = await runScript(this.redis, 'set-callback-status-2', [this.keys.job(hash), this.keys.events], [
      hash,
      status,
      finishedAt,
      now(),
    ]);
    return written === 1;
  }

  /** Forgets a song's job (record, queue and dead entries). False when there was no record. */
  async deleteJob(hash: string): Promise<boolean> {
    const existed = await runScript(this.redis, 'delete-job-4', [this.keys.job(hash), this.keys.toWorker, this.keys.dead, this.keys.events], [hash]);
    return existed === 1;
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
  async claim(blocking: Redis, workerId: string, timeoutSec: number): Promise<{ hash: string; attempt: number } | null> {
    const hash = await blocking.blmove(this.keys.toWorker, this.keys.processing(workerId), 'RIGHT', 'LEFT', timeoutSec);
    if (hash === null) return null;
    const attempt = Number(await runScript(this.redis, 'start-2', [this.keys.job(hash), this.keys.events], [hash, workerId, now()]));
    return { hash, attempt };
  }

  /** Jobs a worker holds (after a restart with the same id, these are resumed first). */
  async held(workerId: string): Promise<string[]> {
    return this.redis.lrange(this.keys.processing(workerId), 0, -1);
  }

  async progress(workerId: string, hash: string, fraction: number): Promise<boolean> {
    const owned = await runScript(this.redis, 'progress-3', [this.keys.job(hash), this.keys.processing(workerId), this.keys.events], [
      hash,
      fraction.toFixed(4),
      now(),
    ]);
    return owned === 1;
  }

  /** Records the uploaded stems, only while this worker owns the job. False when it lost the job. */
  async recordStems(workerId: string, hash: string, stems: readonly Track[]): Promise<boolean> {
    const owned = await runScript(this.redis, 'record-stems-3', [this.keys.job(hash), this.keys.processing(workerId), this.keys.events], [
      hash,
      stems.join(','),
      now(),
    ]);
    return owned === 1;
  }

  async complete(workerId: string, hash: string, durationSec: number): Promise<boolean> {
    const owned = await runScript(
      this.redis,
      'complete-4',
      [this.keys.processing(workerId), this.keys.job(hash), this.keys.toWorker, this.keys.events],
      [hash, now(), durationSec.toFixed(3)],
    );
    return owned === 1;
  }

  async fail(workerId: string, hash: string, error: string, opts: { retryable: boolean; maxAttempts: number }): Promise<FailResult> {
    const reply = await runScript(
      this.redis,
      'fail-5',
      [this.keys.processing(workerId), this.keys.job(hash), this.keys.toWorker, this.keys.dead, this.keys.events],
      [hash, error.slice(0, 2000), opts.maxAttempts, opts.retryable ? '1' : '0', now()],
    );
    return reply as FailResult;
  }

  /** Hands a job back (shutdown before it finished); the attempt does not count. */
  async release(workerId: string, hash: string): Promise<boolean> {
    const owned = await runScript(
      this.redis,
      'release-4',
      [this.keys.processing(workerId), this.keys.job(hash), this.keys.toWorker, this.keys.events],
      [hash, now()],
    );
    return owned === 1;
  }

  /**
   * Returns the jobs of workers whose heartbeat expired to the queue (or to `dead`). `mayReap` is
   * asked before each worker: the caller stops as soon as it can no longer judge heartbeats.
   */
  async reap(maxAttempts: number, mayReap: () => boolean = () => true): Promise<{ requeued: number; dead: number; workers: string[] }> {
    const ids = await this.redis.smembers(this.keys.workers);
    const result = { requeued: 0, dead: 0, workers: [] as string[] };
    for (const id of ids) {
      if (!mayReap()) break;
      const reply = (await runScript(
        this.redis,
        'reap-6',
        [this.keys.processing(id), this.keys.heartbeat(id), this.keys.toWorker, this.keys.dead, this.keys.workers, this.keys.events],
        [id, this.keys.job(''), maxAttempts, now()],
      )) as [number, number];
      result.requeued += reply[0];
      result.dead += reply[1];
      if (reply[0] + reply[1] > 0) result.workers.push(id);
    }
    return result;
  }
}
