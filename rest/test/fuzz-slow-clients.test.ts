/**
 * Slow and stalled clients against the real rest app (./fuzz/target.ts): trickled and stalled bodies,
 * headers that never finish, a chunked body cut before its last chunk. Each must end in a 4xx or a
 * server timeout, never a hang, while the server keeps answering others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import { buildRequest, rawRequest } from './helpers/raw-http.ts';
import { multipartBody } from './fuzz/arbitraries.ts';
import { startFuzzTarget, type FuzzTarget } from './fuzz/target.ts';

let target: FuzzTarget;
let server: Server;
let port: number;
let processErrors: string[];
let pool: Buffer[];

beforeAll(async () => {
  target = await startFuzzTarget('fuzz-slow');
  ({ server, port, processErrors } = target);
  ({ pool } = target.corpus);
});

afterAll(async () => {
  await target?.close();
});

describe('slow and stalled bodies', () => {
  it('ends trickling and stalled requests with a 4xx or a server timeout, without a hang, while serving others', async () => {
    const clip = pool[0]!.toString('base64');
    const json = Buffer.from(JSON.stringify({ mp3: clip }));
    const mp = multipartBody([{ name: 'file', filename: 'slow.mp3', ctype: 'audio/mpeg', content: pool[1]! }], 'slowb', '\r\n', true);
    const started = Date.now();
    const slow = [
      // body announced, a few pieces sent, then silence
      rawRequest(port, buildRequest('POST', '/apiv1/separate', [['Content-Type', 'application/json']], json), { deadlineMs: 20_000, trickle: { pieces: 40, pauseMs: 100, stopAfter: 5 } }),
      rawRequest(port, buildRequest('POST', '/apiv1/separate', [['Content-Type', 'multipart/form-data; boundary=slowb']], mp), { deadlineMs: 20_000, trickle: { pieces: 40, pauseMs: 100, stopAfter: 5 } }),
      // headers that never finish (slowloris)
      rawRequest(port, Buffer.from('GET /apiv1/queue HTTP/1.1\r\nHost: x\r\nX-Slow: '), { deadlineMs: 20_000, trickle: { pieces: 1, pauseMs: 100 } }),
      // a body that keeps trickling, one piece every 400 ms: under the idle limit, over the request limit
      rawRequest(port, buildRequest('POST', '/apiv1/separate', [['Content-Type', 'application/json']], json), { deadlineMs: 20_000, trickle: { pieces: 200, pauseMs: 400 } }),
      // chunked body that stops before its last chunk
      rawRequest(port, Buffer.from('POST /apiv1/separate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"mp3'), { deadlineMs: 20_000 }),
    ];
    // The server keeps answering others meanwhile.
    const probes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const r = await rawRequest(port, buildRequest('GET', '/healthz'));
      expect(r.kind === 'response' && r.status).toBe(200);
      probes.push(Date.now() - t0);
      await new Promise((r) => setTimeout(r, 200));
    }
    const outcomes = await Promise.all(slow);
    const summary = outcomes.map((o) => (o.kind === 'response' ? `${o.status} after ${o.ms} ms` : `${o.kind} after ${o.ms} ms`));
    console.log(`[fuzz] slow bodies: ${summary.join('; ')}; /healthz meanwhile ${Math.max(...probes)} ms max`);
    for (const o of outcomes) {
      expect(o.kind).not.toBe('hung');
      if (o.kind === 'response') {
        expect(o.status).toBeGreaterThanOrEqual(400);
        expect(o.status).toBeLessThan(500);
      }
    }
    expect(Date.now() - started).toBeLessThan(15_000);
    const open = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
    expect(open).toBe(0);
    expect(processErrors).toEqual([]);
  });
});
