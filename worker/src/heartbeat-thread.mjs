// @ts-check
// The worker's heartbeat, on a thread of its own. The job loop's thread runs the separation's
// synchronous DSP (STFT, iSTFT, MP3 encoding) in steps of up to ~0.4 s, and much longer on a busy
// machine; a heartbeat that waits for it lets a live worker pass for dead and its job run twice.
// This thread dies with the process, so the heartbeat still stops the moment the worker does.
// Plain JavaScript so it loads the same way under tsx, vitest and node alone.
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';

if (!parentPort) throw new Error('heartbeat-thread must run in a worker thread');
const port = parentPort;

/**
 * `script` is the queue's heartbeat-2.lua (KEYS heartbeat key, workers set; ARGV worker id, TTL, now).
 * @type {{ url: string, heartbeatKey: string, workersKey: string, workerId: string, ttlSec: number, intervalMs: number, script: { lua: string, numberOfKeys: number } }}
 */
const { url, heartbeatKey, workersKey, workerId, ttlSec, intervalMs, script } = workerData;

// Fail fast while Redis is down (no queued beats piling up); beat at once when it is back.
const redis = new Redis(url, {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 5000,
  retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
});
redis.on('error', () => undefined);
redis.defineCommand('msaasHeartbeat', script);
/** @type {(...args: (string | number)[]) => Promise<unknown>} */
const runHeartbeat = Reflect.get(redis, 'msaasHeartbeat').bind(redis);

let stopped = false;
async function beat() {
  if (stopped) return;
  try {
    await runHeartbeat(heartbeatKey, workersKey, workerId, ttlSec, new Date().toISOString());
    port.postMessage({ type: 'beat', ok: true });
  } catch (err) {
    port.postMessage({ type: 'beat', ok: false, message: err instanceof Error ? err.message : String(err) });
  }
}

redis.on('ready', () => void beat());
const timer = setInterval(() => void beat(), intervalMs);

port.on('message', async (msg) => {
  if (msg?.type !== 'stop') return;
  stopped = true;
  clearInterval(timer);
  redis.disconnect();
  port.postMessage({ type: 'stopped' });
  port.close();
});
