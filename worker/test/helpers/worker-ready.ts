// Cold start of the worker process: spawns `node --import tsx <ROOT>/worker/src/main.ts` (ROOT
// default: this repository) with MODEL_PATH and the local Redis, and prints as one JSON line the
// seconds from spawn to its `ready` message (model loaded, health server up, worker taking jobs) and
// the 1-minute load average. No object store is contacted before a job, so none is started.
//   MODEL_PATH=/models/htdemucs.onnx node --import tsx worker/test/helpers/worker-ready.ts
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const root = process.env.ROOT ?? path.resolve(import.meta.dirname, '../../..');
const started = performance.now();
const load1 = os.loadavg()[0]!;
const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/src/main.ts')], {
  cwd: root,
  stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  env: {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TMPDIR: process.env.TMPDIR ?? os.tmpdir(),
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_PREFIX: `bench:ready:${process.pid}:`,
    MINIO_ENDPOINT: '127.0.0.1',
    MINIO_PORT: '1',
    MINIO_ACCESS_KEY: 'unused',
    MINIO_SECRET_KEY: 'unused-secret',
    ...(process.env.MODEL_PATH ? { MODEL_PATH: process.env.MODEL_PATH } : {}),
    ORT_THREADS: '2',
    ORT_MEMORY_ARENA: 'false',
    WORKER_HEALTH_PORT: '0',
    LOG_LEVEL: 'warn',
    WORKER_ID: `bench-${process.pid}`,
  },
});
child.on('message', (m: { type?: string }) => {
  if (m?.type !== 'ready') return;
  process.stdout.write(`${JSON.stringify({ readySec: +((performance.now() - started) / 1000).toFixed(2), load1: +load1.toFixed(2) })}\n`);
  child.kill('SIGTERM');
});
child.on('exit', (code) => {
  if (code) process.exitCode = code;
});
