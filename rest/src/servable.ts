import type { AppDeps } from './deps.ts';
import { ApiError } from './errors.ts';

/**
 * A song's stems are served only once its job is done: while it runs, a stem in the bucket may be
 * an upload still being written (a store without atomic PUTs, like the embedded one) or one of a
 * set the worker has not finished. With Redis unreachable the store alone decides, so finished
 * songs stay downloadable through a Redis outage.
 */
export async function refuseWhileRunning(deps: Pick<AppDeps, 'queue' | 'logger'>, hash: string): Promise<void> {
  const job = await deps.queue.getJob(hash).catch((err: unknown) => {
    deps.logger.warn({ job: hash, err }, 'job record unreadable; serving stems from the store alone');
    return null;
  });
  if (job && (job.state === 'queued' || job.state === 'processing')) {
    const detail = `the song is still ${job.state} (${Math.round(job.progress * 100)}%); its stems are served once all four are stored`;
    throw new ApiError(404, 'not_ready', detail);
  }
}
