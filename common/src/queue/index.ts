import type { Redis } from 'ioredis';
import type { Keys } from '../keys.ts';
import { parseJobRecord, type Callback, type JobRecord } from '../job.ts';
import { runScript } from './scripts.ts';

export type EnqueueResult = 'enqueued' | 'queued' | 'done';
export type FailResult = 'retry' | 'dead' | 'lost';

const now = (): string => new Date().toISOString();

export interface EnqueueInput {
  hash: string;
  callback?: Callback | null;
  sizeBytes: number;
  filename?: string | null;
  /** Re-run a job whose record says done (its stems were removed). */
  rerun?: boolean;
}

/**
 * The job queue: LPUSH onto `toWorker`, workers take from the right with BLMOVE into their own
 * processing list, so a job is always in exactly one list and a dead worker's jobs can be found.
 */
export class Queue {
  constructor(
    readonly redis: Redis,
    readonly keys: Keys,
  ) {}

  async enqueue(input: EnqueueInput): Promise<EnqueueResult> {
    const reply = await runScript(this.redis, 'enqueue-2', [this.keys.job(input.hash), this.keys.toWorker], [
      input.hash,
      now(),
      input.callback ? JSON.stringify(input.callback) : '',
      input.sizeBytes,
      input.filename ?? '',
      input.rerun ? '1' : '0',
    ]);
    await this.notify(input.hash);
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

  async setJobFields(hash: string, fields: Record<string, string | number>): Promise<void> {
    await this.redis.hset(this.keys.job(hash), { ...fields, updatedAt: now() });
    await this.notify(hash);
  }

  async deleteJob(hash: string): Promise<void> {
    await this.redis.multi().del(this.keys.job(hash)).lrem(this.keys.toWorker, 0, hash).lrem(this.keys.dead, 0, hash).exec();
    await this.notify(hash);
  }

  async dead(): Promise<string[]> {
    return this.redis.lrange(this.keys.dead, 0, -1);
  }

  /** Tells SSE listeners that a job changed. */
  async notify(hash: string): Promise<void> {
    await this.redis.publish(this.keys.events, hash);
  }

  // ---- worker side ----

  /** Liveness of a worker; refreshed for as long as the process lives, not only while it works. */
  async heartbeat(workerId: string, ttlSec: number): Promise<void> {
    await this.redis.multi().set(this.keys.heartbeat(workerId), now(), 'EX', ttlSec).sadd(this.keys.workers, workerId).exec();
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
    const attempt = Number(await runScript(this.redis, 'start-1', [this.keys.job(hash)], [workerId, now()]));
    await this.notify(hash);
    return { hash, attempt };
  }

  /** Jobs a worker holds (after a restart with the same id, these are resumed first). */
  async held(workerId: string): Promise<string[]> {
    return this.redis.lrange(this.keys.processing(workerId), 0, -1);
  }

  async progress(workerId: string, hash: string, fraction: number): Promise<boolean> {
    const owned = await runScript(this.redis, 'progress-2', [this.keys.job(hash), this.keys.processing(workerId)], [
      hash,
      fraction.toFixed(4),
      now(),
    ]);
    await this.notify(hash);
    return owned === 1;
  }

  async complete(workerId: string, hash: string, durationSec: number): Promise<boolean> {
    const owned = await runScript(
      this.redis,
      'complete-3',
      [this.keys.processing(workerId), this.keys.job(hash), this.keys.toWorker],
      [hash, now(), durationSec.toFixed(3)],
    );
    await this.notify(hash);
    return owned === 1;
  }

  async fail(workerId: string, hash: string, error: string, opts: { retryable: boolean; maxAttempts: number }): Promise<FailResult> {
    const reply = await runScript(
      this.redis,
      'fail-4',
      [this.keys.processing(workerId), this.keys.job(hash), this.keys.toWorker, this.keys.dead],
      [hash, error.slice(0, 2000), opts.maxAttempts, opts.retryable ? '1' : '0', now()],
    );
    await this.notify(hash);
    return reply as FailResult;
  }

  /** Hands a job back (shutdown before it finished); the attempt does not count. */
  async release(workerId: string, hash: string): Promise<boolean> {
    const owned = await runScript(this.redis, 'release-3', [this.keys.processing(workerId), this.keys.job(hash), this.keys.toWorker], [
      hash,
      now(),
    ]);
    await this.notify(hash);
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
        'reap-5',
        [this.keys.processing(id), this.keys.heartbeat(id), this.keys.toWorker, this.keys.dead, this.keys.workers],
        [id, this.keys.job(''), maxAttempts, now()],
      )) as [number, number];
      result.requeued += reply[0];
      result.dead += reply[1];
      if (reply[0] + reply[1] > 0) result.workers.push(id);
    }
    return result;
  }
}
