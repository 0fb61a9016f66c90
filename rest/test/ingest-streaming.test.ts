/**
 * Issue 24 items 1 and 2 with real processes: rest and a worker (stand-in model) as child processes,
 * real Redis, the embedded S3 server over HTTP. A 150 MB WAV uploaded by multipart and another
 * through a direct upload (PUT to the store, then submitted by id) both separate, while rest's RSS
 * (read from /proc of the rest child) stays within +64 MiB of its idle RSS; a 16-bit WAV longer than
 * the duration cap is refused from its header with nothing of it stored.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { songhash, type JobView } from '@msaas/common';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { printLinesOnFailure, startStack, type Stack } from '../../test/helpers/stack.ts';
import { standinModelPath } from '../../test/helpers/standin-model.ts';

const MB = 1_000_000;
const MiB = 2 ** 20;
let stack: Stack;
let restPid: number;

printLinesOnFailure(() => stack?.lines);

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

/** rest's idle RSS: the lowest of 2 s of samples (what the last request left uncollected is not idle). */
async function idleRssMiB(): Promise<number> {
  let low = rssMiB(restPid);
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 50));
    low = Math.min(low, rssMiB(restPid));
  }
  return low;
}

/** Samples rest's RSS every 20 ms while `work` runs; the peak. */
async function peakRssDuring<T>(work: () => Promise<T>): Promise<{ result: T; peakMiB: number }> {
  let peak = rssMiB(restPid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(restPid));
    } catch {
      /* the process is gone: the test fails elsewhere */
    }
  }, 20);
  try {
    const result = await work();
    peak = Math.max(peak, rssMiB(restPid));
    return { result, peakMiB: peak };
  } finally {
    clearInterval(timer);
  }
}

/**
 * A 32-bit float stereo WAV at 96 kHz of `bytes` (150 MB: 195 s): a taken format, large per second,
 * so the worker's share of the test stays short. Two tones and a pulse, `seed` moving the pitch.
 */
function synthWav(bytes: number, seed: number): Buffer {
  const rate = 96_000;
  const frames = Math.floor((bytes - 44) / 8);
  const out = Buffer.allocUnsafe(44 + frames * 8);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(out.length - 8, 4);
  out.write('WAVEfmt ', 8, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(3, 20);
  out.writeUInt16LE(2, 22);
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(rate * 8, 28);
  out.writeUInt16LE(8, 32);
  out.writeUInt16LE(32, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(frames * 8, 40);
  const samples = new Float32Array(out.buffer, out.byteOffset + 44, frames * 2);
  const f1 = (2 * Math.PI * (220 + seed * 7)) / rate;
  const f2 = (2 * Math.PI * (1500 + seed * 31)) / rate;
  for (let i = 0; i < frames; i++) {
    const beat = (i % rate) < rate / 20 ? 0.3 : 0;
    samples[2 * i] = 0.3 * Math.sin(f1 * i) + beat * Math.sin(f2 * i);
    samples[2 * i + 1] = 0.3 * Math.sin(f1 * 1.5 * i) + beat * Math.sin(f2 * i);
  }
  return out;
}

/** Every file under the store's queue bucket folder (s3rver keeps objects and multipart parts on disk). */
function queueFiles(): string[] {
  const root = path.join(stack.env.LOCAL_STORE_DIR!, 'queue');
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else found.push(path.relative(root, p));
    }
  };
  try {
    walk(root);
  } catch {
    /* no bucket folder yet */
  }
  return found.sort();
}

/**
 * One request on a connection of its own (agent: false): synthesizing 150 MB blocks this process
 * for seconds, long enough for rest's keep-alive timeout to close a pooled socket that fetch would
 * then reuse (EPIPE).
 */
function send(method: string, url: string, headers: Record<string, string | number>, body: Buffer[]): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, 'content-length': body.reduce((n, b) => n + b.length, 0) }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    for (const b of body) req.write(b);
    req.end();
  });
}

/** A multipart body with the file in the field "file". */
function multipart(file: Buffer, filename: string): { headers: Record<string, string>; body: Buffer[] } {
  const boundary = `----msaas${Date.now()}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: audio/wav\r\n\r\n`);
  return { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: [head, file, Buffer.from(`\r\n--${boundary}--\r\n`)] };
}

async function followToDone(hash: string): Promise<JobView> {
  return stack.api.follow(hash, { via: 'events', timeoutMs: 600_000 });
}

beforeAll(async () => {
  stack = await startStack({ env: { MODEL_PATH: standinModelPath(), RATE_LIMIT_PER_MIN: '100000', SUBMIT_RATE_LIMIT_PER_MIN: '100000' } });
  restPid = stack.children.get('rest')!.pid!;
  // A small song through the same path first, so idle means "warmed up", not "never ran".
  const warm = await synthesizeMp3({ seconds: 4, seed: 3 });
  const form = new FormData();
  form.append('file', new Blob([warm as Uint8Array<ArrayBuffer>]), 'warm.mp3');
  const res = await fetch(`${stack.url}/apiv1/separate`, { method: 'POST', body: form });
  expect(res.status).toBe(200);
  await followToDone(songhash(warm));
}, 180_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

describe('uploads of 150 MB stream through rest', () => {
  it('a 16-bit WAV longer than MAX_DURATION_SEC (901 s, 159 MB) is refused 400 too_long from its header, and nothing of it reaches the store', async () => {
    const frames = 901 * 44_100;
    const wav = Buffer.alloc(44 + frames * 4);
    wav.write('RIFF', 0, 'ascii');
    wav.writeUInt32LE(wav.length - 8, 4);
    wav.write('WAVEfmt ', 8, 'ascii');
    wav.writeUInt32LE(16, 16);
    wav.writeUInt16LE(1, 20);
    wav.writeUInt16LE(2, 22);
    wav.writeUInt32LE(44_100, 24);
    wav.writeUInt32LE(44_100 * 4, 28);
    wav.writeUInt16LE(4, 32);
    wav.writeUInt16LE(16, 34);
    wav.write('data', 36, 'ascii');
    wav.writeUInt32LE(frames * 4, 40);
    const before = queueFiles();
    const idle = await idleRssMiB();
    const upload = multipart(wav, 'long.wav');
    // Watched while the body is sent: no file of it may appear in the queue bucket, even for a moment.
    const appeared = new Set<string>();
    const watch = setInterval(() => {
      for (const f of queueFiles()) if (!before.includes(f)) appeared.add(f);
    }, 20);
    const { result: res, peakMiB } = await peakRssDuring(() => send('POST', `${stack.url}/apiv1/separate`, upload.headers, upload.body)).finally(() => clearInterval(watch));
    const body = res.json as { error: string; detail: string };
    process.stdout.write(`[ingest] 901 s 16-bit WAV (${(wav.length / MB).toFixed(0)} MB) → ${res.status} ${body.error}: ${body.detail}; rest RSS ${idle.toFixed(0)} → peak ${peakMiB.toFixed(0)} MiB\n`);
    expect(res.status).toBe(400);
    expect(body.error).toBe('too_long');
    expect(body.detail).toBe('the song is 901 s long; the limit is 900 s (MAX_DURATION_SEC)');
    for (const f of queueFiles()) if (!before.includes(f)) appeared.add(f);
    expect([...appeared]).toEqual([]);
  }, 120_000);

  it('a 150 MB WAV by multipart separates (stand-in model), rest RSS within +64 MiB of idle', async () => {
    const wav = synthWav(150 * MB, 1);
    const hash = songhash(wav);
    const idle = await idleRssMiB();
    const upload = multipart(wav, 'master.wav');
    const started = Date.now();
    const { result: res, peakMiB } = await peakRssDuring(async () => {
      const r = await send('POST', `${stack.url}/apiv1/separate`, upload.headers, upload.body);
      return { status: r.status, body: r.json as { hash: string; result: string } };
    });
    const ms = Date.now() - started;
    process.stdout.write(`[ingest] multipart 150 MB WAV: ${res.status} ${res.body.result} in ${ms} ms; rest RSS idle ${idle.toFixed(1)} MiB → peak ${peakMiB.toFixed(1)} MiB (+${(peakMiB - idle).toFixed(1)}); load ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`);
    expect(res.status).toBe(200);
    expect(res.body.hash).toBe(hash);
    expect(res.body.result).toBe('enqueued');
    expect(peakMiB - idle).toBeLessThan(64);
    expect(queueFiles().filter((f) => f.includes('incoming'))).toEqual([]);
    const done = await followToDone(hash);
    expect(done.state).toBe('done');
    const vocals = await stack.api.stem(hash, 'vocals');
    expect(vocals.bytes.length).toBeGreaterThan(100_000);
  }, 900_000);

  it('a 150 MB WAV through a direct upload (PUT to the store, submitted by id) separates, rest RSS within +64 MiB of idle while it reads the upload from the store', async () => {
    const wav = synthWav(150 * MB, 2);
    const hash = songhash(wav);
    const made = await send('POST', `${stack.url}/apiv1/uploads`, { 'content-type': 'application/json' }, [Buffer.from(JSON.stringify({ filename: 'master-2.wav' }))]);
    expect(made.status).toBe(201);
    const up = made.json as { id: string; url: string; maxBytes: number };
    expect(up.maxBytes).toBe(248 * MiB);
    const put = await send('PUT', up.url, {}, [wav]);
    expect(put.status).toBe(200);
    const idle = await idleRssMiB();
    const started = Date.now();
    const { result: res, peakMiB } = await peakRssDuring(async () => {
      const r = await send('POST', `${stack.url}/apiv1/separate`, { 'content-type': 'application/json' }, [Buffer.from(JSON.stringify({ upload: up.id }))]);
      return { status: r.status, body: r.json as { hash: string; result: string; job: JobView } };
    });
    process.stdout.write(`[ingest] direct upload 150 MB WAV: submit ${res.status} ${res.body.result} in ${Date.now() - started} ms; rest RSS idle ${idle.toFixed(1)} MiB → peak ${peakMiB.toFixed(1)} MiB (+${(peakMiB - idle).toFixed(1)})\n`);
    expect(res.status).toBe(200);
    expect(res.body.hash).toBe(hash);
    expect(res.body.job.filename).toBe('master-2.wav');
    expect(peakMiB - idle).toBeLessThan(64);
    expect(queueFiles().filter((f) => f.includes('direct'))).toEqual([]);
    const done = await followToDone(hash);
    expect(done.state).toBe('done');
  }, 900_000);
});
