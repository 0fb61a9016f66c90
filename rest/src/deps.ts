import type { Logger } from 'pino';
import type { Config, ObjectStore, Queue } from '@msaas/common';
import type { JobEvents } from './job-events.ts';
import type { RestMetrics } from './metrics.ts';
import type { ClusterInfo } from './cluster.ts';
import type { MixThreads } from './mix-threads.ts';

/** Everything the app needs, built by `buildRest` in bootstrap.ts (or a test) and passed in. */
export interface AppDeps {
  config: Config;
  queue: Queue;
  store: ObjectStore;
  events: JobEvents;
  logger: Logger;
  metrics: RestMetrics;
  /** Where custom mixes are decoded, summed and encoded (mix-threads.ts). */
  mixThreads: MixThreads;
  cluster?: ClusterInfo;
  /** Folder with the web page; GET / serves its index.html. */
  publicDir?: string;
  /** DNS resolution for the callback SSRF check (tests inject one). */
  resolveHost?: (host: string) => Promise<string[]>;
}
