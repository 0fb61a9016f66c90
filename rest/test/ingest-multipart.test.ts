/**
 * Issue 24 item 1, the multipart path's edges with a real rest app on a real socket, real Redis and
 * the real s3rver: a body announced over the cap is refused before it is read or stored; a file that
 * is not audio leaves nothing staged.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

let under: RestUnderTest;
let server: http.Server;
let port: number;

beforeAll(async () => {
  under = await restUnderTest('ingest-multipart', { MAX_UPLOAD_MB: '1' });
  server = http.createServer(under.rest.app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
}, 60_000);

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await under?.close();
});

/** Sends the multipart head and the first `sendBytes` of a file announced as `fileBytes`, then waits for the answer. */
function announce(fileBytes: number, sendBytes: number): Promise<{ status: number; body: { error: string; detail: string }; sent: number }> {
  const boundary = 'xBOUNDARYx';
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/apiv1/separate', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + fileBytes + tail.length } });
    let sent = head.length;
    req.write(head);
    req.write(Buffer.alloc(sendBytes, 1));
    sent += sendBytes;
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), sent }));
    });
    req.on('error', reject);
  });
}

describe('multipart uploads', () => {
  it('a body announced over MAX_UPLOAD_MB (+1 MiB for fields) is refused 413 from its Content-Length, before its file is sent, and nothing is staged', async () => {
    const r = await announce(5 * 2 ** 20, 64 * 1024);
    expect(r.status).toBe(413);
    expect(r.body.error).toBe('payload_too_large');
    expect(r.body.detail).toMatch(/^the upload is 5\.0 MiB, the limit of 1 MiB \(MAX_UPLOAD_MB\)$/);
    expect(r.sent).toBeLessThan(100 * 1024);
    expect(await under.rest.deps.store.staleStaged('incoming/', new Date(Date.now() + 60_000))).toEqual([]);
  });
});
