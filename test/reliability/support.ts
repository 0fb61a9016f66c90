/** Shared by the reliability tests: clips, waiting for a job, looking into the output bucket. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as Minio from 'minio';
import { TRACKS, type ApiClient, type JobView } from '@msaas/common';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import type { Stack } from '../helpers/stack.ts';

/** A synthesized clip, cached on disk across test files and runs (synthesis costs seconds). */
export async function clip(seconds: number, seed = 11): Promise<Buffer> {
  const dir = path.join(os.tmpdir(), 'msaas-reliability-clips');
  const file = path.join(dir, `clip-${seconds}s-${seed}.mp3`);
  if (existsSync(file)) return readFileSync(file);
  const bytes = Buffer.from(await synthesizeMp3({ seconds, seed }));
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
  return bytes;
}

/**
 * The same audio as a different song (a different songhash): an ID3v2 tag with `n` bytes of
 * padding in front. Costs nothing, unlike synthesizing a new clip.
 */
export function variant(mp3: Buffer, n: number): Buffer {
  const size = n + 1;
  const header = Buffer.from([0x49, 0x44, 0x33, 3, 0, 0, (size >> 21) & 0x7f, (size >> 14) & 0x7f, (size >> 7) & 0x7f, size & 0x7f]);
  return Buffer.concat([header, Buffer.alloc(size), mp3]);
}

/**
 * Follows the job until `until` holds. A job that reaches `done` or `failed` without satisfying it
 * never will: that fails at once with the job's state and error instead of waiting out the timeout.
 */
export async function waitJob(api: ApiClient, hash: string, until: (j: JobView) => boolean, timeoutMs: number, what: string): Promise<JobView> {
  const label = `${what} (${hash.slice(0, 12)})`;
  const j = await api.follow(hash, { until, intervalMs: 100, timeoutMs }).catch((err: Error) => {
    throw new Error(`${label}: ${err.message}`, { cause: err });
  });
  if (!until(j)) throw new Error(`${label}: the job ended ${j.state} first (${JSON.stringify(j)})`);
  return j;
}

/**
 * Follows the job to `done`, then polls until its callback's outcome is recorded: that comes after
 * the job is done (the worker sends the callback once the stems are stored), so a job that is
 * done without a callback status may still get one.
 */
export async function waitCallback(api: ApiClient, hash: string, timeoutMs: number, what: string): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let j = await waitJob(api, hash, (v) => v.state === 'done', timeoutMs, what);
  while (!j.callback?.status) {
    if (Date.now() > deadline) throw new Error(`${what} (${hash.slice(0, 12)}): done, but no callback status within ${timeoutMs} ms (${JSON.stringify(j)})`);
    await sleep(100);
    j = await api.job(hash);
  }
  return j;
}

export const stemNames = (hash: string): string[] => TRACKS.map((t) => `${hash}-${t}.mp3`).sort();

export function s3Client(env: NodeJS.ProcessEnv): Minio.Client {
  return new Minio.Client({
    endPoint: env.MINIO_ENDPOINT!,
    port: Number(env.MINIO_PORT),
    useSSL: false,
    accessKey: env.MINIO_ACCESS_KEY!,
    secretKey: env.MINIO_SECRET_KEY!,
    region: 'us-east-1',
    pathStyle: true,
  });
}

/** Every object in the output bucket whose name starts with the songhash (any name, not only the four stems). */
export async function outputObjects(client: Minio.Client, hash: string): Promise<{ name: string; size: number }[]> {
  const found: { name: string; size: number }[] = [];
  const stream = client.listObjectsV2('output', hash, true);
  for await (const o of stream as AsyncIterable<{ name?: string; size?: number }>) {
    if (o.name) found.push({ name: o.name, size: o.size ?? 0 });
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/** Lines a worker printed about a job (pino JSON carries the songhash in `job`). */
export function workerLines(stack: Stack, hash: string, text: string): string[] {
  return stack.lines.filter((l) => l.service === 'worker' && l.line.includes(hash) && l.line.includes(text)).map((l) => l.line);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Figures each test measured, printed at the end of the file's run (and read into docs/reliability.md);
 * the services' output goes to test-output/reliability-<file>.log for diagnosing a failure.
 */
export function report(file: string, figures: Record<string, unknown>, lines: Stack['lines'] = []): void {
  process.stdout.write(`\n[reliability:${file}] ${JSON.stringify(figures)}\n`);
  const dir = path.resolve(fileURLToPath(new URL('../../test-output', import.meta.url)));
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `reliability-${file}.log`), lines.map((l) => `[${l.service}] ${l.line}`).join('\n') + '\n');
}
