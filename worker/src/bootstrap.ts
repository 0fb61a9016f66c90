import type { Logger } from 'pino';
import { Queue, createLogger, createObjectStore, createRedis, makeKeys, queueOptions, type Config, type StoreEndpoint } from '@msaas/common';
import type { Separator } from './job.ts';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.ts';
import { Worker } from './worker.ts';

/** Wires a worker from config and a separator; main.ts passes the real engine, tests may pass a stand-in. */
export function buildWorker(
  config: Config,
  endpoint: StoreEndpoint,
  separator: Separator,
  isBadAudio: (err: unknown) => boolean,
  opts: { logger?: Logger; resolveHost?: (host: string) => Promise<string[]> } = {},
): { worker: Worker; logger: Logger; metrics: WorkerMetrics; close(): void } {
  const keys = makeKeys(config.REDIS_PREFIX);
  const redis = createRedis(config.REDIS_URL, 'worker');
  const blocking = createRedis(config.REDIS_URL, 'worker');
  const unitBlocking = createRedis(config.REDIS_URL, 'worker');
  // The reaper's commands must never wait out an outage and run after it: by then every heartbeat
  // key may have expired. No offline queue, no retries: a reap that meets an outage is dropped.
  const reaperRedis = createRedis(config.REDIS_URL, 'worker', { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  const logger = opts.logger ?? createLogger({ service: 'worker', level: config.LOG_LEVEL, redis, keys, listMax: config.LOG_LIST_MAX });
  const store = createObjectStore(endpoint, config);
  const metrics = createWorkerMetrics();
  const worker = new Worker({
    config,
    queue: new Queue(redis, keys, queueOptions(config)),
    reaper: new Queue(reaperRedis, keys, queueOptions(config)),
    blocking,
    unitBlocking,
    store,
    separator,
    isBadAudio,
    logger,
    metrics,
    ...(opts.resolveHost ? { resolveHost: opts.resolveHost } : {}),
  });
  return {
    worker,
    logger,
    metrics,
    close() {
      redis.disconnect();
      blocking.disconnect();
      unitBlocking.disconnect();
      reaperRedis.disconnect();
    },
  };
}
