/**
 * Issue 24 item 3: POST /apiv1/separate {"url": …}. rest fetches the file before answering (as a
 * multipart or base64 submit is read before the answer), with the callbacks' SSRF guard, a size and
 * a time limit; the songhash is the fetched bytes'. Real rest app (supertest), real Redis, the real
 * s3rver, and real HTTP servers on loopback serving the files.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { songhash } from '@msaas/common';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { fetchUrl } from '../src/ingest/fetch-url.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

let open: RestUnderTest;
let guarded: RestUnderTest;
let server: http.Server;
let base: string;
let mp3: Uint8Array;
let stalls: http.ServerResponse[] = [];

beforeAll(async () => {
  mp3 = await synthesizeMp3({ seconds: 6, seed: 41 });
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/songs/take%20five.mp3') return res.writeHead(200, { 'content-type': 'audio/mpeg', 'content-length': mp3.length }).end(mp3);
    if (url.pathname === '/moved') return res.writeHead(302, { location: '/songs/take%20five.mp3' }).end();
    if (url.pathname === '/to-private') return res.writeHead(302, { location: url.searchParams.get('to')! }).end();
    if (url.pathname === '/missing') return res.writeHead(404).end('no');
    if (url.pathname === '/big') return res.writeHead(200, { 'content-length': 3 * 2 ** 20 }).end(Buffer.alloc(3 * 2 ** 20, 1));
    if (url.pathname === '/big-chunked') {
      // No Content-Length: the size shows only as the bytes come; the first is an MP3's start.
      res.writeHead(200, { 'content-type': 'audio/mpeg' });
      const chunk = Buffer.from(mp3.subarray(0, 64 * 1024));
      let sent = 0;
      const more = (): void => {
        while (sent < 3 * 2 ** 20) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      return more();
    }
    if (url.pathname === '/slow') {
      // Headers and the first bytes at once, then nothing.
      res.writeHead(200, { 'content-type': 'audio/mpeg', 'content-length': mp3.length });
      res.write(mp3.subarray(0, 4096));
      stalls.push(res);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  open = await restUnderTest('url-open', { URL_FETCH_ALLOW_PRIVATE: 'true', MAX_UPLOAD_MB: '1', URL_FETCH_TIMEOUT_SEC: '1.5' });
  guarded = await restUnderTest('url-guarded');
}, 60_000);

afterAll(async () => {
  for (const s of stalls) s.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await open?.close();
  await guarded?.close();
});

describe('submit by URL with URL_FETCH_ALLOW_PRIVATE=true (development switch on)', () => {
  it('fetches the file from a local HTTP server (following a redirect): the songhash is the fetched bytes\', the upload stored under it, the file name the URL\'s last segment', async () => {
    const res = await request(open.rest.app).post('/apiv1/separate').send({ url: `${base}/moved` });
    expect(res.status).toBe(200);
    expect(res.body.result).toBe('enqueued');
    expect(res.body.hash).toBe(songhash(mp3));
    expect(res.body.job.filename).toBe('take five.mp3');
    expect(await open.rest.deps.store.hasUpload(songhash(mp3))).toBe(true);
  });

  it('a URL answering 404 is 422 url_fetch_failed naming the status', async () => {
    const res = await request(open.rest.app).post('/apiv1/separate').send({ url: `${base}/missing` });
    expect(res.status).toBe(422);
    expect(res.body.error).toBe('url_fetch_failed');
    expect(res.body.detail).toMatch(/answered HTTP 404/);
  });

  it('a body announced over MAX_UPLOAD_MB is refused 413 before it is read, and one that only shows its size as it comes is cut at the cap', async () => {
    const announced = await request(open.rest.app).post('/apiv1/separate').send({ url: `${base}/big` });
    expect(announced.status).toBe(413);
    expect(announced.body.error).toBe('payload_too_large');
    expect(announced.body.detail).toMatch(/the file at the URL is 3\.0 MiB, the limit of 1 MiB \(MAX_UPLOAD_MB\)/);
    const chunked = await request(open.rest.app).post('/apiv1/separate').send({ url: `${base}/big-chunked` });
    expect(chunked.status).toBe(413);
    expect(chunked.body.error).toBe('payload_too_large');
  });

  it('a server that stops sending hits URL_FETCH_TIMEOUT_SEC: 422 with a sentence, and nothing is left staged', async () => {
    const started = Date.now();
    const res = await request(open.rest.app).post('/apiv1/separate').send({ url: `${base}/slow` });
    expect(res.status).toBe(422);
    expect(res.body.error).toBe('url_fetch_failed');
    expect(res.body.detail).toBe('the URL did not deliver the whole file within 1.5 s (URL_FETCH_TIMEOUT_SEC)');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await open.rest.deps.store.staleStaged('incoming/', new Date(Date.now() + 60_000))).toEqual([]);
  });
});

describe('submit by URL with the switch off (the default)', () => {
  it.each([
    ['http://127.0.0.1:8080/song.mp3', /127\.0\.0\.1/],
    ['http://10.1.2.3/song.mp3', /10\.1\.2\.3/],
    ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254/],
    ['http://[::1]/song.mp3', /::1/],
    ['http://localhost/song.mp3', /loopback/],
  ])('refuses %s with 400 bad_url and a sentence', async (url, names) => {
    const res = await request(guarded.rest.app).post('/apiv1/separate').send({ url });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('bad_url');
    expect(res.body.detail).toMatch(names);
    expect(res.body.detail).toMatch(/private or reserved address; set URL_FETCH_ALLOW_PRIVATE=true to allow|loopback address/);
  });

  it('refuses a port outside URL_FETCH_ALLOWED_PORTS and a non-http scheme', async () => {
    const port = await request(guarded.rest.app).post('/apiv1/separate').send({ url: 'http://example.com:6379/x' });
    expect(port.status).toBe(400);
    expect(port.body.detail).toMatch(/port 6379 is not allowed \(URL_FETCH_ALLOWED_PORTS: 80, 443\)/);
    const scheme = await request(guarded.rest.app).post('/apiv1/separate').send({ url: 'file:///etc/passwd' });
    expect(scheme.status).toBe(400);
    expect(scheme.body.error).toBe('bad_url');
  });

  it.each(['http://127.0.0.1/x', 'http://10.0.0.7/x', 'http://169.254.169.254/latest/', 'http://[::1]/x'])(
    'a public URL that redirects to %s is refused with a sentence naming the redirect',
    async (target) => {
      // A public name (by the test's resolver) whose connections this agent takes to the local server.
      const { port } = server.address() as AddressInfo;
      const agent = new http.Agent();
      (agent as unknown as { createConnection: () => net.Socket }).createConnection = () => net.connect(port, '127.0.0.1');
      const attempt = fetchUrl(`http://files.example.com:${port}/to-private?to=${encodeURIComponent(target)}`, {
        guard: { allowPrivate: false, allowedPorts: [port, 80], resolve: async () => ['93.184.216.34'] },
        timeoutMs: 5000,
        maxBytes: 2 ** 20,
        agent,
      });
      await expect(attempt).rejects.toMatchObject({ code: 'bad_url', detail: expect.stringMatching(/^the URL redirects to http:\/\/.+, which is refused: the URL's host .+ resolves to a private or reserved address; set URL_FETCH_ALLOW_PRIVATE=true to allow$/) });
      agent.destroy();
    },
  );
});
