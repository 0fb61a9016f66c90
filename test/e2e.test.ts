import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRACKS, songhash } from '@msaas/common';
import { decodeMp3 } from '../worker/src/separation/index.ts';
import { synthesizeMp3 } from '../worker/fixtures/synth.ts';
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
  stack = await startStack({ worker: true, logs: true, contract: true });
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
    const { hash, result } = await stack.api.submit(mp3, { callback: { url: `http://127.0.0.1:${port}/cb`, data: { song: 'e2e', n: 1 } } });
    expect(hash).toBe(songhash(mp3));
    expect(result).toBe('enqueued');

    // followed over the job's event stream: it rises through the separation to done
    const progress: number[] = [];
    const job = await stack.api.follow(hash, { via: 'events', timeoutMs: 150_000, onChange: (j) => progress.push(j.progress) });
    expect(job).toMatchObject({ state: 'done', progress: 1, error: null });
    expect(progress).toEqual([...progress].sort((a, b) => a - b));

    for (const track of TRACKS) {
      const { bytes, contentType } = await stack.api.stem(hash, track);
      expect(contentType).toBe('audio/mpeg');
      const decoded = await decodeMp3(bytes);
      expect(decoded.durationSec).toBeGreaterThan(seconds - 0.1);
      expect(decoded.durationSec).toBeLessThan(seconds + 0.2);
      const energy = decoded.channels[0].reduce((a, v) => a + v * v, 0);
      expect(Number.isFinite(energy)).toBe(true);
    }

    await waitFor(async () => received.length > 0, { timeoutMs: 10_000, what: 'callback' });
    expect(received[0]!.body).toEqual({ song: 'e2e', n: 1 });
    expect((await stack.api.queue()).queue).toEqual([]);

    // the logs service printed the services' events
    await waitFor(async () => stack.lines.some((l) => l.service === 'logs' && /rest .*song enqueued/.test(l.line)), { timeoutMs: 5000, what: 'rest event in logs output' });
    expect(stack.lines.some((l) => l.service === 'logs' && /worker .*job done/.test(l.line))).toBe(true);
  }, 200_000);
});
