import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Express } from 'express';
import type { Logger } from 'pino';
import {
  Queue,
  createLogger,
  createObjectStore,
  createRedis,
  makeKeys,
  queueOptions,
  withRetry,
  type Config,
  type StoreEndpoint,
} from '@msaas/common';
import { createApp } from './app.ts';
import { createClusterInfo, loadInClusterKubeConfig } from './cluster.ts';
import type { AppDeps } from './deps.ts';
import { JobEvents } from './job-events.ts';
import { createMetrics } from './metrics.ts';
import { RetentionSweeper } from './retention.ts';
import { MixThreads } from './mix-threads.ts';

export const PUBLIC_DIR = fileURLToPath(new URL('../public', import.meta.url));

export interface RestService {
  app: Express;
  deps: AppDeps;
  logger: Logger;
  sweeper: RetentionSweeper;
  close(): Promise<void>;
}

/** Wires the real dependencies from config; used by main.ts and by the tests. */
export async function buildRest(
  config: Config,
  endpoint: StoreEndpoint,
  opts: { logger?: Logger; resolveHost?: (host: string) => Promise<string[]> } = {},
): Promise<RestService> {
  const keys = makeKeys(config.REDIS_PREFIX);
  const redis = createRedis(config.REDIS_URL, 'api');
  const logger = opts.logger ?? createLogger({ service: 'rest', level: config.LOG_LEVEL, redis, keys, listMax: config.LOG_LIST_MAX });
  const queue = new Queue(redis, keys, queueOptions(config));
  const store = createObjectStore(endpoint, config);
  const events = new JobEvents(createRedis(config.REDIS_URL, 'subscriber'), keys.events);
  const metrics = createMetrics(() => queue.length());
  const cluster = createClusterInfo({
    kubeConfig: loadInClusterKubeConfig({ kubernetesServiceHost: config.KUBERNETES_SERVICE_HOST }),
    ...(config.KUBE_NAMESPACE ? { namespace: config.KUBE_NAMESPACE } : {}),
    workerDeployment: config.WORKER_DEPLOYMENT,
    getQueueLength: () => queue.length(),
  });

  // The store or Redis may come up after us: keep trying in the background; /readyz tells the truth meanwhile.
  const stopping = new AbortController();
  const buckets = withRetry(() => store.ensureBuckets(), {
    shouldRetry: () => true,
    maxWaitMs: Number.POSITIVE_INFINITY,
    baseMs: 200,
    signal: stopping.signal,
    onRetry: (err, attempt) => {
      if (attempt === 1) logger.warn(`object store not ready yet: ${(err as Error).message}`);
    },
  }).catch(() => undefined);
  await Promise.race([buckets, new Promise((r) => setTimeout(r, 3000))]);
  events.start().catch((err: Error) => logger.warn(`job event subscription failed: ${err.message}`));

  // The mixes' CPU beside the request thread: MIX_THREADS, no more than there are mix slots.
  const mixThreads = new MixThreads(Math.min(config.MIX_THREADS, config.MAX_CONCURRENT_MIXES));
  const deps: AppDeps = {
    config,
    queue,
    store,
    events,
    logger,
    metrics,
    mixThreads,
    cluster,
    publicDir: path.resolve(PUBLIC_DIR),
    ...(opts.resolveHost ? { resolveHost: opts.resolveHost } : {}),
  };
  const app = createApp(deps);
  const sweeper = new RetentionSweeper({ queue, store, logger, livePiecesGraceSec: config.LIVE_PIECES_GRACE_SEC, directUploadExpirySec: config.DIRECT_UPLOAD_EXPIRY_SEC }, config.RETENTION_SWEEP_SEC * 1000);
  // Always swept: besides retention, the sweep removes failed songs' uploads and finished songs' pieces.
  sweeper.start();
  return {
    app,
    deps,
    logger,
    sweeper,
    async close() {
      stopping.abort();
      await sweeper.stop();
      await events.close();
      await mixThreads.close();
      redis.disconnect();
    },
  };
}
