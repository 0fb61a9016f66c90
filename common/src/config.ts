import os from 'node:os';
import { z } from 'zod';
import { parseKeyEntries } from './tenants.ts';
import { parseTrustProxy } from './trust-proxy.ts';
import { QUALITY_PROFILES } from './quality-profiles.ts';
import { DEFAULT_MAX_DURATION_SEC } from './audio-limits.ts';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** MinIO's well-known default key and secret: the local default here, refused in a cluster (loadConfig). */
export const DEV_MINIO_CREDENTIAL = 'minioadmin';

/** A comma-separated list of ports 1..65535. */
function portList(v: string, ctx: z.RefinementCtx): number[] {
  const ports = v.split(',').map((p) => p.trim()).filter(Boolean).map(Number);
  if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    ctx.addIssue({ code: 'custom', message: 'comma-separated ports 1..65535' });
    return z.NEVER;
  }
  return ports;
}

/** Every setting of every service, validated once at start. */
export const ConfigSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(5000),
  HOST: z.string().default('0.0.0.0'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Prefix for every Redis key and channel; empty in production (lab-compatible names), set by tests to isolate runs. */
  REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]*$/).default(''),
  MINIO_ENDPOINT: optionalString,
  MINIO_PORT: z.coerce.number().int().min(1).max(65535).default(9000),
  MINIO_ACCESS_KEY: z.string().default(DEV_MINIO_CREDENTIAL),
  MINIO_SECRET_KEY: z.string().default(DEV_MINIO_CREDENTIAL),
  MINIO_USE_SSL: bool.default(false),
  MINIO_REGION: z.string().default('us-east-1'),
  LOCAL_STORE_DIR: z.string().default('./var/objects'),
  QUEUE_BUCKET: z.string().min(3).default('queue'),
  OUTPUT_BUCKET: z.string().min(3).default('output'),
  /**
   * The largest upload (MiB) by multipart, direct upload or URL. Streamed to the store (rest holds a
   * few MiB per upload whatever its size), so the default is what the duration cap allows for a
   * studio master: 24-bit 48 kHz stereo WAV × 900 s = 259.2 MB = 247.2 MiB, plus its header.
   */
  MAX_UPLOAD_MB: z.coerce.number().positive().max(2048).default(248),
  /** The lab's base64 JSON body (`{"mp3": ...}`) is held whole in memory: its own, smaller cap (MiB; the lower of this and MAX_UPLOAD_MB). */
  JSON_UPLOAD_MAX_MB: z.coerce.number().positive().max(512).default(64),
  /** The object store's address as clients reach it, for direct-upload URLs (default: MINIO_ENDPOINT's own address). */
  STORE_PUBLIC_URL: optionalString.pipe(z.string().url().optional()),
  /** How long a direct upload's URL (POST /apiv1/uploads) is valid; an upload not submitted by then is removed. */
  DIRECT_UPLOAD_EXPIRY_SEC: z.coerce.number().int().min(60).max(7 * 86_400).default(3600),
  /** `{"url": ...}` submits: private and reserved addresses allowed (development and tests only). */
  URL_FETCH_ALLOW_PRIVATE: bool.default(false),
  /** Ports a submitted URL may name (comma-separated). */
  URL_FETCH_ALLOWED_PORTS: z.string().default('80,443').transform((v, ctx) => portList(v, ctx)),
  /** A URL fetch that has not delivered the whole file by then is abandoned (seconds). */
  URL_FETCH_TIMEOUT_SEC: z.coerce.number().positive().default(120),
  /** How long an Idempotency-Key's first answer is kept and replayed. */
  IDEMPOTENCY_TTL_SEC: z.coerce.number().int().positive().default(86_400),
  MAX_DURATION_SEC: z.coerce.number().positive().default(DEFAULT_MAX_DURATION_SEC),
  MODEL_PATH: optionalString,
  ORT_THREADS: z.coerce.number().int().positive().optional(),
  ORT_MEMORY_ARENA: bool.optional(),
  /** Graph the worker's session runs: 'optimized' (rewritten for ORT's CPU provider, cached; default) or 'original'. */
  ORT_GRAPH: z.enum(['original', 'optimized']).optional(),
  /** What the optimized graph trades for speed: 'exact' (default) or 'int8-transformer' (approximate; docs/separation.md › Quality profiles). */
  QUALITY_PROFILE: z.enum(QUALITY_PROFILES).optional(),
  /** Where the optimized graph is cached when MODEL_PATH's directory is not writable (default: the OS temp dir). */
  MODEL_CACHE_DIR: optionalString,
  /** The CLI re-executes itself with glibc's huge-page tunable unless this is false (docs/separation.md › Huge pages). */
  MALLOC_HUGEPAGES: bool.optional(),
  MP3_VBR_QUALITY: z.coerce.number().int().min(0).max(9).optional(),
  /** Uploads one rest replica receives at once; beyond it 503 + Retry-After (each may hold MAX_UPLOAD_MB). */
  MAX_CONCURRENT_UPLOADS: z.coerce.number().int().positive().default(8),
  /** Custom mixes (GET …/mix) one rest replica encodes at once; beyond it 503 + Retry-After (each costs a share of its MIX_THREADS). */
  MAX_CONCURRENT_MIXES: z.coerce.number().int().positive().default(4),
  /** Threads one rest replica decodes, sums and encodes its custom mixes on (rest/src/mix-threads.ts; ~42 MiB each); at most MAX_CONCURRENT_MIXES are used. */
  MIX_THREADS: z.coerce.number().int().positive().default(2),
  /** Custom mixes one tenant (keys on) or client address (keys off) may have encoding at once in one rest replica; beyond it 429 + Retry-After. */
  MIXES_PER_CLIENT: z.coerce.number().int().positive().default(2),
  /** Open event streams per tenant (keys on) or client address (keys off), in one rest replica (docs/security.md › Event streams says why). */
  STREAMS_PER_CLIENT: z.coerce.number().int().positive().default(20),
  /** Open event streams one rest replica holds at most. */
  STREAMS_PER_PROCESS: z.coerce.number().int().positive().default(2000),
  /** An event stream is closed after this long; the client's EventSource reconnects and gets the current state. */
  STREAM_MAX_LIFETIME_SEC: z.coerce.number().positive().default(600),
  /** Which peers may set X-Forwarded-For: unset/'' = none, a hop count, or comma-separated addresses/CIDRs. */
  TRUST_PROXY: optionalString,
  /** Failed API-key attempts per client address per minute before 429. */
  AUTH_FAIL_LIMIT_PER_MIN: z.coerce.number().int().positive().default(30),
  /** Deadline for resolving a callback host. */
  DNS_TIMEOUT_MS: z.coerce.number().int().positive().default(2000),
  /** Ports a callback URL may name (comma-separated). */
  CALLBACK_ALLOWED_PORTS: z.string().default('80,443').transform((v, ctx) => portList(v, ctx)),
  /** When set, /metrics and /readyz are served on this port only (one the Ingress does not route). */
  ADMIN_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** `id:key` or bare `key` entries, comma-separated (tenants.ts); with `API_KEYS_FILE`, one entry a line. */
  API_KEYS: optionalString,
  API_KEYS_FILE: optionalString,
  RATE_LIMIT_PER_MIN: z.coerce.number().int().positive().default(600),
  /** Submissions have a window of their own, apart from status reads. */
  SUBMIT_RATE_LIMIT_PER_MIN: z.coerce.number().int().positive().default(60),
  /** Queued + processing songs one tenant may have at once; 0 = no limit. */
  MAX_ACTIVE_JOBS_PER_KEY: z.coerce.number().int().min(0).default(10),
  /** Minutes of audio one tenant may submit per UTC day; unset = no limit. */
  MAX_AUDIO_MINUTES_PER_DAY: z.coerce.number().positive().optional(),
  /** How long a finished or failed song (record, stems, upload) is kept; fractions allowed; 0 = forever. */
  RETENTION_DAYS: z.coerce.number().min(0).default(7),
  /** How often rest looks for songs past their retention. */
  RETENTION_SWEEP_SEC: z.coerce.number().positive().default(60),
  /** With a secret, every callback is signed (X-MSaaS-Signature) so its receiver can verify it. */
  CALLBACK_SECRET: optionalString,
  CALLBACK_ALLOW_PRIVATE: bool.default(false),
  CALLBACK_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  CALLBACK_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  WORKER_ID: z.string().default(`${os.hostname()}-${process.pid}`),
  WORKER_HEALTH_PORT: z.coerce.number().int().min(0).max(65535).default(9100),
  HEARTBEAT_TTL_SEC: z.coerce.number().int().positive().default(30),
  REAP_INTERVAL_SEC: z.coerce.number().positive().default(5),
  MAX_ATTEMPTS: z.coerce.number().int().positive().default(3),
  SHUTDOWN_GRACE_SEC: z.coerce.number().positive().default(25),
  /** The worker publishes each chunk's final samples as a piece in the store while it separates (issue 21); false turns it off. */
  PROGRESSIVE_PIECES: bool.default(true),
  /**
   * A song longer than this (seconds) is split into ranges of consecutive chunks that any worker
   * takes (issue 23; docs/reliability.md › One song, many workers); 0 = never split, the default:
   * splitting is for a pool of workers (the k8s config sets 180), opt-in elsewhere, where a song runs
   * as the lab's did; on one worker it costs about nothing (`npm run bench:ranges`) but store traffic.
   */
  SPLIT_MIN_SEC: z.coerce.number().min(0).default(0),
  /** Chunks (5.85 s of audio each) per range of a split song; ranges are made about this long, evened out over the song. */
  SPLIT_RANGE_CHUNKS: z.coerce.number().int().min(2).default(4),
  /**
   * Encoding units of split songs a worker runs at once beside its range or song (its side slots):
   * each encodes one stem as the song's ranges finish, mostly waiting for them (issue 23 item 5).
   */
  ENCODE_SLOTS: z.coerce.number().int().min(1).max(32).default(5),
  /**
   * Range outputs a worker keeps in memory after storing them (MB), so its own encoding units read
   * them without a round trip through the store; the oldest go first, and a unit reads from the
   * store what is not here.
   */
  RANGE_CACHE_MB: z.coerce.number().int().min(0).default(128),
  /** How long a done or failed song's pieces (`live/<songhash>/`) outlive its finish, so live streams started before the end can finish. */
  LIVE_PIECES_GRACE_SEC: z.coerce.number().min(0).default(300),
  /** A worker's single object-store request that has not answered by then is abandoned and retried (a hung store, not a down one). */
  STORE_TIMEOUT_SEC: z.coerce.number().positive().default(120),
  LOG_LIST_MAX: z.coerce.number().int().positive().default(1000),
  KUBE_NAMESPACE: optionalString,
  KUBERNETES_SERVICE_HOST: optionalString,
  WORKER_DEPLOYMENT: z.string().default('worker'),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates the environment once; throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, string> = {}): Config {
  const merged: Record<string, string | undefined> = { ...env, ...overrides };
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}=${JSON.stringify(merged[String(i.path[0])] ?? '')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const inCluster = parsed.data.KUBERNETES_SERVICE_HOST !== undefined;
  if (inCluster && parsed.data.MINIO_ENDPOINT !== undefined) {
    // The MinIO defaults are for a laptop; in a pod a service must be given its own key pair.
    for (const name of ['MINIO_ACCESS_KEY', 'MINIO_SECRET_KEY'] as const) {
      const value = parsed.data[name].trim();
      if (value === '' || value === DEV_MINIO_CREDENTIAL) {
        throw new ConfigError(
          `invalid configuration:\n  ${name}=${JSON.stringify(value)}: ${value ? 'the MinIO default credential' : 'empty'} is refused in a Kubernetes pod (KUBERNETES_SERVICE_HOST is set); give the service its own key (docs/kubernetes.md, Secrets)`,
        );
      }
    }
  }
  try {
    parseTrustProxy(parsed.data.TRUST_PROXY);
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  ${(err as Error).message}`);
  }
  if (parsed.data.API_KEYS) {
    try {
      parseKeyEntries(parsed.data.API_KEYS, 'API_KEYS');
    } catch (err) {
      throw new ConfigError(`invalid configuration:\n  ${(err as Error).message}`);
    }
  }
  return parsed.data;
}

/** For a service's main: load config or exit(2) with a message naming the variable. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
