/**
 * What publishing progressive pieces costs a separation (issue 21: ≤ 5 % wall time, ≤ +100 MB peak
 * RSS on a 60 s song). One process, the real engine and model, a real Redis and an embedded S3
 * server; runs alternate without and with the worker's PiecePublisher (copy, upload in the
 * background, one progress transition per chunk), the lab's four MP3 stems encoded in both.
 *
 *   npm run bench:progressive-cost -- [--seconds 60] [--rounds 2]
 *
 * Prints one line per run and a summary (median wall time each way, overhead, peak RSS each way).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { DEFAULT_OUTPUT_FORMAT, Queue, createObjectStore, loadConfig, makeKeys, startEmbeddedStore } from '@msaas/common';
import { createEngine, DEFAULT_OUTPUT } from '../worker/src/separation/index.ts';
import { PiecePublisher } from '../worker/src/pieces.ts';
import { synthesizeMp3 } from '../worker/fixtures/synth.ts';
import { loadAverage } from './load-average.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, rounds: { type: 'string', default: '2' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);

const peakMiB = (): number => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const resetPeak = (): void => writeFileSync('/proc/self/clear_refs', '5');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(path.join(os.tmpdir(), 'msaas-progressive-cost-'));
const s3 = await startEmbeddedStore({ directory: dir });
const config = loadConfig({}, {});
const store = createObjectStore(s3.endpoint, config);
await store.ensureBuckets();
const prefix = `bench:progressive-cost:${process.pid}:`;
const redis = new Redis(config.REDIS_URL);
const queue = new Queue(redis, makeKeys(prefix));
const hash = '0'.repeat(56);
await queue.submit({ hash, sizeBytes: 1, format: DEFAULT_OUTPUT_FORMAT });
const blocking = new Redis(config.REDIS_URL);
await queue.claim(blocking, 'bench', 1);
blocking.disconnect();

console.log(`# bench:progressive-cost — ${seconds} s synthesized song, ${rounds} rounds alternating; load ${loadAverage()}`);
const mp3 = await synthesizeMp3({ seconds, seed: 5 });
const engine = await createEngine({});
await engine.warmUp();
const logger = pino({ level: 'silent' });

const runs: Record<'off' | 'on', { ms: number; peak: number }[]> = { off: [], on: [] };
for (let r = 0; r < rounds; r++) {
  for (const mode of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
    await store.removePieces(hash);
    if (global.gc) global.gc();
    resetPeak();
    const pieces =
      mode === 'on'
        ? new PiecePublisher({ store, queue, logger, workerId: 'bench', hash, attempt: (_w, op) => op(), reset: false, onNotOwned: (o) => console.error(`not owned: ${o}`) })
        : null;
    const t0 = performance.now();
    const { files } = await engine.separateToFiles(mp3, DEFAULT_OUTPUT, {
      onProgress: (f) => pieces?.setFraction(f),
      ...(pieces ? { onPiece: (p) => pieces.add(p) } : {}),
    });
    await pieces?.flush();
    const ms = performance.now() - t0;
    const peak = peakMiB();
    runs[mode].push({ ms, peak });
    const stored = mode === 'on' ? (await store.listPieces(hash)).length : 0;
    console.log(`${mode.padEnd(3)} ${(ms / 1000).toFixed(2)} s, peak RSS ${peak.toFixed(0)} MiB, ${files.length} files${mode === 'on' ? `, ${stored} pieces` : ''}`);
  }
}
const off = median(runs.off.map((x) => x.ms));
const on = median(runs.on.map((x) => x.ms));
console.log(
  `summary (${seconds} s song, ${rounds} rounds): off ${(off / 1000).toFixed(2)} s, on ${(on / 1000).toFixed(2)} s, overhead ${(((on - off) / off) * 100).toFixed(1)} %; ` +
    `peak RSS off ${Math.max(...runs.off.map((x) => x.peak)).toFixed(0)} MiB, on ${Math.max(...runs.on.map((x) => x.peak)).toFixed(0)} MiB (targets: ≤ 5 %, ≤ +100 MB); load ${loadAverage()}`,
);
await engine.close();
await store.removePieces(hash);
await redis.del(...(await redis.keys(`${prefix}*`)));
redis.disconnect();
await s3.close();
rmSync(dir, { recursive: true, force: true });
