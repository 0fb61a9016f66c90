import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fireCallback } from '../src/callback.ts';

/** What a receiver writes, from the README: no code of ours, only node:crypto. */
function verify(secret: string, header: string | undefined, rawBody: string, toleranceSec = 300, nowSec = Math.floor(Date.now() / 1000)): boolean {
  const parts = Object.fromEntries((header ?? '').split(',').map((kv) => kv.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSec - t) > toleranceSec || !parts.v1) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

interface Received {
  path: string;
  body: string;
  signature: string | undefined;
  eventId: string | undefined;
}

describe('signed callbacks', () => {
  const received: Received[] = [];
  let port = 0;
  let failuresLeft = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body, signature: req.headers['x-msaas-signature'] as string | undefined, eventId: req.headers['x-msaas-event-id'] as string | undefined });
      if (req.url === '/flaky' && failuresLeft-- > 0) res.writeHead(503).end();
      else res.writeHead(200).end('ok');
    });
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const opts = { allowPrivate: true, timeoutMs: 2000, retries: 2 };

  it('signs the exact body with HMAC-SHA256 over "<t>.<body>", which an independent receiver verifies', async () => {
    received.length = 0;
    const status = await fireCallback({ url: `http://127.0.0.1:${port}/hook`, data: { song: 'x', n: [1, 2] } }, { ...opts, secret: 's3cret' });
    expect(status).toBe('delivered: HTTP 200');
    const [got] = received;
    expect(got!.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verify('s3cret', got!.signature, got!.body)).toBe(true);
    expect(JSON.parse(got!.body)).toEqual({ song: 'x', n: [1, 2] });
  });

  it('fails verification for a tampered body, another secret, or a stale timestamp', async () => {
    received.length = 0;
    await fireCallback({ url: `http://127.0.0.1:${port}/hook`, data: { amount: 1 } }, { ...opts, secret: 's3cret', now: () => Date.parse('2026-01-01T00:00:00Z') });
    const [got] = received;
    const t = Date.parse('2026-01-01T00:00:00Z') / 1000;
    expect(verify('s3cret', got!.signature, got!.body, 300, t)).toBe(true);
    expect(verify('s3cret', got!.signature, got!.body.replace('1', '2'), 300, t)).toBe(false);
    expect(verify('other', got!.signature, got!.body, 300, t)).toBe(false);
    expect(verify('s3cret', got!.signature, got!.body, 300, t + 301)).toBe(false);
  });

  it('keeps one event id across the retries of one delivery and sends no signature without a secret', async () => {
    received.length = 0;
    failuresLeft = 2;
    const status = await fireCallback({ url: `http://127.0.0.1:${port}/flaky`, data: {} }, { ...opts });
    expect(status).toBe('delivered: HTTP 200 after 3 tries');
    expect(received).toHaveLength(3);
    expect(new Set(received.map((r) => r.eventId)).size).toBe(1);
    expect(received[0]!.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(received.every((r) => r.signature === undefined)).toBe(true);
    received.length = 0;
    await fireCallback({ url: `http://127.0.0.1:${port}/hook`, data: {} }, { ...opts });
    expect(received[0]!.eventId).not.toBe(undefined);
  });
});
