/**
 * Issue 24 item 2: POST /apiv1/uploads hands out a presigned PUT URL of the object store; the file
 * PUT there (over real HTTP, to the real s3rver, signed by the real minio client) is submitted with
 * POST /apiv1/separate {"upload": id}: read from the store as a stream (sniffed, hashed, probed),
 * moved to its songhash; used once; over its size limit or not audio it is refused and removed; an
 * upload never submitted is removed by the retention sweep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { directUploadKey, songhash } from '@msaas/common';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { sweepStaged } from '../src/retention.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

const ALICE = 'k-alice-direct-upload-1';
const BOB = 'k-bob-direct-upload-2';
let under: RestUnderTest;
let publicUrl: RestUnderTest;
let mp3: Uint8Array;

const app = () => under.rest.app;
const as = (key: string) => ({ Authorization: `Bearer ${key}` });

async function newUpload(key = ALICE, body: object = {}): Promise<{ id: string; url: string; method: string; expiresAt: string; maxBytes: number; headers: Record<string, string> }> {
  const res = await request(app()).post('/apiv1/uploads').set(as(key)).send(body);
  expect(res.status).toBe(201);
  return res.body;
}

async function put(url: string, bytes: Uint8Array): Promise<number> {
  const res = await fetch(url, { method: 'PUT', body: bytes as Uint8Array<ArrayBuffer> });
  await res.arrayBuffer();
  return res.status;
}

beforeAll(async () => {
  mp3 = await synthesizeMp3({ seconds: 5, seed: 77 });
  under = await restUnderTest('direct-upload', { API_KEYS: `alice:${ALICE},bob:${BOB}`, MAX_UPLOAD_MB: '1', DIRECT_UPLOAD_EXPIRY_SEC: '600' });
  publicUrl = await restUnderTest('direct-upload-public', { STORE_PUBLIC_URL: 'https://uploads.example.com' });
}, 60_000);

afterAll(async () => {
  await under?.close();
  await publicUrl?.close();
});

describe('direct upload', () => {
  it('POST /apiv1/uploads answers a presigned PUT URL with its expiry and size limit; the file PUT there and submitted by id separates as its songhash, and the staged object is moved away', async () => {
    const before = Date.now();
    const up = await newUpload(ALICE, { filename: 'demo take.mp3' });
    expect(up.method).toBe('PUT');
    expect(up.id).toMatch(/^[0-9a-f]{32}$/);
    expect(up.maxBytes).toBe(2 ** 20);
    expect(up.headers).toEqual({});
    expect(Date.parse(up.expiresAt) - before).toBeGreaterThan(590_000);
    expect(up.url).toContain(`/${directUploadKey(up.id)}?`);
    expect(up.url).toMatch(/X-Amz-Signature=[0-9a-f]{64}/);
    expect(await put(up.url, mp3)).toBe(200);

    const res = await request(app()).post('/apiv1/separate').set(as(ALICE)).send({ upload: up.id });
    expect(res.status).toBe(200);
    expect(res.body.result).toBe('enqueued');
    expect(res.body.hash).toBe(songhash(mp3));
    expect(res.body.job.filename).toBe('demo take.mp3');
    const store = under.rest.deps.store;
    expect(await store.hasUpload(songhash(mp3))).toBe(true);
    expect(await store.statStaged(directUploadKey(up.id))).toBeNull();

    const again = await request(app()).post('/apiv1/separate').set(as(ALICE)).send({ upload: up.id });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('upload_used');
  });

  it('an upload submitted before anything was PUT is 409 upload_missing; another tenant\'s upload id is 404 like an unknown one', async () => {
    const up = await newUpload(ALICE);
    const early = await request(app()).post('/apiv1/separate').set(as(ALICE)).send({ upload: up.id });
    expect(early.status).toBe(409);
    expect(early.body.error).toBe('upload_missing');
    expect(early.body.detail).toMatch(/PUT the file to its url first/);
    expect(await put(up.url, mp3)).toBe(200);
    const bob = await request(app()).post('/apiv1/separate').set(as(BOB)).send({ upload: up.id });
    expect(bob.status).toBe(404);
    expect(bob.body.error).toBe('not_found');
    const unknown = await request(app()).post('/apiv1/separate').set(as(BOB)).send({ upload: '0'.repeat(32) });
    expect(unknown.status).toBe(404);
    expect(bob.body.detail.replace(up.id, 'ID')).toBe(unknown.body.detail.replace('0'.repeat(32), 'ID'));
  });

  it('a file over maxBytes (the store does not bound a presigned PUT) is refused 413 at submit and removed; bytes that are not audio are 400 and removed', async () => {
    const store = under.rest.deps.store;
    const big = await newUpload(ALICE);
    const tooBig = Buffer.concat([Buffer.from(mp3), Buffer.alloc(2 ** 20, 0)]);
    expect(await put(big.url, tooBig)).toBe(200);
    const res = await request(app()).post('/apiv1/separate').set(as(ALICE)).send({ upload: big.id });
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('payload_too_large');
    expect(res.body.detail).toMatch(/over its limit of 1 MiB \(MAX_UPLOAD_MB\); it was removed/);
    expect(await store.statStaged(directUploadKey(big.id))).toBeNull();

    const text = await newUpload(ALICE);
    expect(await put(text.url, Buffer.from('<html>not a song</html>'))).toBe(200);
    const bad = await request(app()).post('/apiv1/separate').set(as(ALICE)).send({ upload: text.id });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('unsupported_format');
    expect(await store.statStaged(directUploadKey(text.id))).toBeNull();
  });

  it('an upload never submitted is removed by the retention sweep once its URL has expired, not before', async () => {
    const store = under.rest.deps.store;
    const up = await newUpload(ALICE);
    expect(await put(up.url, mp3)).toBe(200);
    const deps = { queue: under.rest.deps.queue, store, logger: under.rest.logger, directUploadExpirySec: 600 };
    await sweepStaged(deps, Date.now() + 60_000);
    expect(await store.statStaged(directUploadKey(up.id))).not.toBeNull();
    await sweepStaged(deps, Date.now() + 2 * 600_000 + 60_000);
    expect(await store.statStaged(directUploadKey(up.id))).toBeNull();
  });

  it('the embedded store takes the minio client\'s presigned PUT over HTTP and refuses it once expired', async () => {
    const store = under.rest.deps.store;
    const url = await store.uploadSigner(undefined).presignPut(directUploadKey('expiry-check'), 1);
    await new Promise((r) => setTimeout(r, 2100));
    const res = await fetch(url, { method: 'PUT', body: Buffer.from(mp3) as Uint8Array<ArrayBuffer> });
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/Request has expired/);
    expect(await store.statStaged(directUploadKey('expiry-check'))).toBeNull();
  });

  it('the URL is signed for STORE_PUBLIC_URL, the address clients reach the store at', async () => {
    const res = await request(publicUrl.rest.app).post('/apiv1/uploads').send();
    expect(res.status).toBe(201);
    expect(res.body.url).toMatch(/^https:\/\/uploads\.example\.com\/queue\/direct\/[0-9a-f]{32}\?X-Amz-Algorithm=AWS4-HMAC-SHA256&/);
  });

  it('a body with an unknown member or a bad filename is 400', async () => {
    const res = await request(app()).post('/apiv1/uploads').set(as(ALICE)).send({ file: 'x' });
    expect(res.status).toBe(400);
    const both = await request(app()).post('/apiv1/separate').set(as(ALICE)).send({ upload: 'a'.repeat(32), url: 'https://example.com/a.mp3' });
    expect(both.status).toBe(400);
    expect(both.body.detail).toMatch(/one way: upload and url were both given/);
  });
});
