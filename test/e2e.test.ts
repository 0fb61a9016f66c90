import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRACKS, songhash } from '@msaas/common';
import { decodeMp3 } from '../worker/src/separation/index.ts';
import { synthesizeMp3 } from '../worker/src/synth.ts';
import { printLinesOnFailure, startStack, type Stack } from './helpers/stack.ts';
import { waitFor } from './helpers/env.ts';

/** The whole service as a user runs it: rest + worker (real HTDemucs model) + logs, real Redis, real S3 server. */
let stack: Stack;
printLinesOnFailure(() => stack?.lines);
let callbackServer: http.Server;
const received: { body: unknown; at: number }[] = [];

beforeAll(async () => {
  callbackServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ body: JSON.parse(body), at: Date.now() });
      res.end();
    });
  });
  await new Promise<void>((r) => callbackServer.listen(0, '127.0.0.1', r));
  stack = await startStack({ worker: true, logs: true });
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  callbackServer?.close();
}, 60_000);

describe('end to end', () => {
  it('separates a generated clip into four decodable MP3 stems of its duration and calls back', async () => {
    const seconds = 4;
    const mp3 = Buffer.from(await synthesizeMp3({ seconds, seed: 5 }));
    const port = (callbackServer.address() as { port: number }).port;
    const submit = await fetch(`${stack.url}/apiv1/separate`, {
      method: 'POST',
      headers: { 'Content-type': 'application/json' },
      body: JSON.stringify({ mp3: mp3.toString('base64'), callback: { url: `http://127.0.0.1:${port}/cb`, data: { song: 'e2e', n: 1 } } }),
    });
    expect(submit.status).toBe(200);
    const { hash, reason } = (await submit.json()) as { hash: string; reason: string };
    expect(hash).toBe(songhash(mp3));
    expect(reason).toBe('Song enqueued for separation');

    const progress: number[] = [];
    const job = await waitFor(async () => {
      const j = (await (await fetch(`${stack.url}/apiv1/jobs/${hash}`)).json()) as { state: string; progress: number; error: string | null };
      progress.push(j.progress);
      if (j.state === 'failed') throw new Error(`job failed: ${j.error}`);
      return j.state === 'done' ? j : null;
    }, { timeoutMs: 150_000, intervalMs: 250, what: 'job done' });
    expect(job.progress).toBe(1);

    for (const track of TRACKS) {
      const res = await fetch(`${stack.url}/apiv1/track/${hash}/${track}.mp3`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('audio/mpeg');
      const bytes = new Uint8Array(await res.arrayBuffer());
      const decoded = await decodeMp3(bytes);
      expect(decoded.durationSec).toBeGreaterThan(seconds - 0.1);
      expect(decoded.durationSec).toBeLessThan(seconds + 0.2);
      const energy = decoded.channels[0].reduce((a, v) => a + v * v, 0);
      expect(Number.isFinite(energy)).toBe(true);
    }

    await waitFor(async () => received.length > 0, { timeoutMs: 10_000, what: 'callback' });
    expect(received[0]!.body).toEqual({ song: 'e2e', n: 1 });
    const queue = (await (await fetch(`${stack.url}/apiv1/queue`)).json()) as { queue: string[] };
    expect(queue.queue).toEqual([]);

    // the logs service printed the services' events
    await waitFor(async () => stack.lines.some((l) => l.service === 'logs' && /rest .*song enqueued/.test(l.line)), { timeoutMs: 5000, what: 'rest event in logs output' });
    expect(stack.lines.some((l) => l.service === 'logs' && /worker .*job done/.test(l.line))).toBe(true);
  }, 200_000);
});
