/**
 * The whole service on one machine, as child processes: an embedded S3-compatible store (unless
 * MINIO_ENDPOINT is set), Redis from REDIS_URL (or a private redis-server when none answers),
 * rest, worker and logs. Used by `npm start` and by the end-to-end tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { withHugePages } from '../worker/src/separation/hugepages.ts';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startEmbeddedStore, type EmbeddedStore } from '@msaas/common';

const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
export type Service = 'rest' | 'worker' | 'logs' | 'redis' | 'store';

export interface LocalStackOptions {
  /** Base environment for the services (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Rest port; 0 picks a free one. Default: PORT from env or 5000. */
  port?: number;
  worker?: boolean;
  logs?: boolean;
  /** Where the embedded store keeps objects (default LOCAL_STORE_DIR or ./var/objects). */
  storeDir?: string;
  onLine?: (service: Service, line: string) => void;
}

export interface LocalStack {
  url: string;
  port: number;
  env: NodeJS.ProcessEnv;
  children: Map<Service, ChildProcess>;
  /** Starts another worker process with the same configuration (its own id). */
  addWorker(extraEnv?: Record<string, string>): Promise<ChildProcess>;
  stop(): Promise<void>;
}

/** True when a Redis at `url` answers PING within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function pipeLines(child: ChildProcess, service: Service, onLine: (s: Service, l: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) readline.createInterface({ input: stream }).on('line', (l) => onLine(service, l));
  }
}

function spawnService(service: Exclude<Service, 'redis'>, env: NodeJS.ProcessEnv, onLine: (s: Service, l: string) => void): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, service, 'src', 'main.ts')], {
    cwd: ROOT,
    // the worker runs the model: glibc's huge pages for its tensors (worker/src/separation/hugepages.ts)
    env: service === 'worker' ? withHugePages(env) : env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  pipeLines(child, service, onLine);
  return child;
}

function waitForMessage<T extends { type: string }>(child: ChildProcess, type: string, service: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${service} did not become ready within ${timeoutMs / 1000} s`)), timeoutMs);
    const onMessage = (m: T): void => {
      if (m?.type !== type) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${service} exited with code ${code} before it was ready`));
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

function stopChild(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const base = { ...(opts.env ?? process.env) };
  const onLine = opts.onLine ?? ((s, l) => process.stdout.write(`[${s}] ${l}\n`));
  const children = new Map<Service, ChildProcess>();
  const extraWorkers: ChildProcess[] = [];
  let store: EmbeddedStore | null = null;
  const cleanup = async (): Promise<void> => {
    const order: Service[] = ['rest', 'worker', 'logs', 'redis'];
    await Promise.all(extraWorkers.map((w) => stopChild(w, 30_000)));
    for (const s of order) {
      const c = children.get(s);
      if (c) await stopChild(c, s === 'worker' ? 30_000 : 10_000);
    }
    await store?.close();
  };

  try {
    const env: NodeJS.ProcessEnv = { ...base };
    env.REDIS_URL ??= 'redis://127.0.0.1:6379';
    if (!(await redisAnswers(env.REDIS_URL))) {
      const found = spawnSync('redis-server', ['--version']).status === 0;
      if (!found) throw new Error(`no Redis answers at ${env.REDIS_URL} and redis-server is not installed (Debian: apt-get install redis-server)`);
      const port = await freePort();
      const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
      pipeLines(redis, 'redis', () => undefined);
      children.set('redis', redis);
      env.REDIS_URL = `redis://127.0.0.1:${port}`;
      for (let i = 0; i < 50 && !(await redisAnswers(env.REDIS_URL)); i++) await new Promise((r) => setTimeout(r, 100));
      onLine('redis', `no Redis answered at ${base.REDIS_URL ?? 'redis://127.0.0.1:6379'}; started redis-server on port ${port}`);
    }

    if (!env.MINIO_ENDPOINT) {
      const dir = path.resolve(ROOT, opts.storeDir ?? env.LOCAL_STORE_DIR ?? 'var/objects');
      store = await startEmbeddedStore({ directory: dir });
      Object.assign(env, {
        MINIO_ENDPOINT: store.endpoint.endPoint,
        MINIO_PORT: String(store.endpoint.port),
        MINIO_ACCESS_KEY: store.endpoint.accessKey,
        MINIO_SECRET_KEY: store.endpoint.secretKey,
        MINIO_USE_SSL: 'false',
      });
      onLine('store', `embedded S3-compatible store on 127.0.0.1:${store.endpoint.port} (objects in ${dir})`);
    }

    const restEnv = { ...env, PORT: String(opts.port ?? env.PORT ?? 5000) };
    if (opts.logs !== false) {
      const logs = spawnService('logs', env, onLine);
      children.set('logs', logs);
      await waitForMessage(logs, 'ready', 'logs', 30_000);
    }
    const rest = spawnService('rest', restEnv, onLine);
    children.set('rest', rest);
    const { port } = await waitForMessage<{ type: string; port: number }>(rest, 'listening', 'rest', 60_000);

    let workerCount = 0;
    const addWorker = async (extraEnv: Record<string, string> = {}): Promise<ChildProcess> => {
      workerCount++;
      const w = spawnService('worker', { WORKER_HEALTH_PORT: '0', ...env, WORKER_ID: `${env.WORKER_ID ?? 'local-worker'}-${workerCount}-${process.pid}`, ...extraEnv }, onLine);
      await waitForMessage(w, 'ready', 'worker', 180_000);
      return w;
    };
    if (opts.worker !== false) children.set('worker', await addWorker());

    return {
      url: `http://localhost:${port}`,
      port,
      env,
      children,
      async addWorker(extra) {
        const w = await addWorker(extra);
        extraWorkers.push(w);
        return w;
      },
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
