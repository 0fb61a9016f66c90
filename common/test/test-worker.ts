import { randomBytes } from 'node:crypto';
import { TRACKS, type ObjectStore, type Queue, type Track } from '../src/index.ts';

/**
 * Test-only: plays a worker for the job a test names, through the queue's real transitions (so each
 * change is written and published exactly as in production). It takes the named job out of turn,
 * and never beats a heartbeat, so no reaper ever judges it.
 */
export class TestWorker {
  readonly id = `test-worker-${randomBytes(4).toString('hex')}`;

  constructor(private readonly queue: Queue) {}

  /** Claims `hash` ahead of the jobs waiting before it (enqueuing it first when it has no record). Returns the attempt. */
  async claim(hash: string): Promise<number> {
    const { redis, keys } = this.queue;
    if (!(await this.queue.getJob(hash))) await this.queue.submit({ hash, sizeBytes: 1 });
    await redis.multi().lrem(keys.toWorker, 0, hash).rpush(keys.toWorker, hash).exec();
    const blocking = redis.duplicate({ enableOfflineQueue: true });
    try {
      const claimed = await this.queue.claim(blocking, this.id, 1);
      if (claimed?.hash !== hash) throw new Error(`claimed ${claimed?.hash ?? 'nothing'} instead of ${hash}`);
      return claimed.attempt;
    } finally {
      blocking.disconnect();
    }
  }

  async progress(hash: string, fraction: number): Promise<void> {
    this.expectOwned(await this.queue.progress(this.id, hash, fraction), hash);
  }

  async recordStems(hash: string, stems: readonly Track[] = TRACKS): Promise<void> {
    this.expectOwned((await this.queue.recordStems(this.id, hash, stems)) === 'owned', hash);
  }

  /** Returns the tenants whose callbacks report the finish. */
  async complete(hash: string, durationSec = 1): Promise<string[]> {
    const { outcome, tenants } = await this.queue.complete(this.id, hash, durationSec);
    this.expectOwned(outcome === 'done', hash);
    return tenants;
  }

  async fail(hash: string, error: string): Promise<void> {
    const outcome = await this.queue.fail(this.id, hash, error, { retryable: false, maxAttempts: 1 });
    this.expectOwned(outcome === 'dead', hash);
  }

  private expectOwned(owned: boolean, hash: string): void {
    if (!owned) throw new Error(`${this.id} does not own ${hash}`);
  }
}

/** A song as a worker leaves it once separated: claimed, its four stems recorded, done. (The stems themselves are the caller's to store.) */
export async function markSeparated(queue: Queue, hash: string): Promise<void> {
  const worker = new TestWorker(queue);
  await worker.claim(hash);
  await worker.recordStems(hash);
  await worker.complete(hash);
}

/** A separated song as a worker leaves it, objects included: `bytes` stored as each of its four stems. */
export async function storeSeparated(deps: { queue: Queue; store: ObjectStore }, hash: string, bytes: Uint8Array): Promise<void> {
  for (const t of TRACKS) await deps.store.putStem(hash, t, bytes);
  await markSeparated(deps.queue, hash);
}
