import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ApiClient, ApiError, TRACKS, songhash, type JobView } from '@msaas/common';
import { buildRest, type RestService } from '../../rest/src/bootstrap.ts';
import { REDIS_URL, deletePrefix, startTestStore, testConfig, uniquePrefix, type TestStore } from '../../test/helpers/env.ts';
import { clip, variant } from '../../test/reliability/support.ts';

/** The client against a real rest app (real Redis, s3rver) that requires an API key. */
const KEY = 'client-test-key';
let store: TestStore;
let rest: RestService;
let server: Server;
let prefix: string;
let api: ApiClient;
let mp3: Buffer;

beforeAll(async () => {
  store = await startTestStore();
  prefix = uniquePrefix('client');
  rest = await buildRest(testConfig(prefix, { MAX_UPLOAD_MB: '1', API_KEYS: KEY }), store.endpoint);
  server = rest.app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  api = new ApiClient({ baseUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, apiKey: KEY, timeoutMs: 10_000 });
  mp3 = await clip(1, 41);
});

afterAll(async () => {
  blocking?.disconnect();
  server?.closeAllConnections();
  server?.close();
  await rest?.close();
  await store?.close();
  await deletePrefix(prefix);
});

const WORKER = 'client-test-worker';
let blocking: Redis;

/** Takes the next job as a worker does (the queue must hold only the one meant) and marks it processing. */
async function claim(hash: string): Promise<void> {
  blocking ??= new Redis(REDIS_URL);
  expect(await rest.deps.queue.claim(blocking, WORKER, 2)).toMatchObject({ hash });
}

/** The rest of a worker's run, a little apart: progress, the four stems stored and recorded, done. */
async function finish(hash: string, bytes: Buffer): Promise<void> {
  const { queue, store } = rest.deps;
  await sleep(100);
  await queue.progress(WORKER, hash, 0.5);
  await sleep(100);
  for (const t of TRACKS) await store.putStem(hash, t, bytes);
  await queue.recordStems(WORKER, hash, TRACKS);
  await queue.complete(WORKER, hash, 1);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const first = (): Buffer => mp3;
const second = (): Buffer => variant(mp3, 1);
/** The song separated by the follow tests, whose stems the later tests download and remove. */
let separated: { hash: string; bytes: Buffer };

describe('ApiClient against rest', () => {
  it('submit sends the lab\'s base64 JSON with its callback and answers result "enqueued", then "queued" for the same song', async () => {
    const res = await api.submit(first(), { callback: { url: 'http://localhost:5000', data: { mp3: 'x.mp3' } } });
    expect(res).toMatchObject({ hash: songhash(first()), result: 'enqueued', reason: 'Song enqueued for separation', job: { state: 'queued' } });
    expect(res.job?.callback?.status).toMatch(/^skipped: /); // loopback, and CALLBACK_ALLOW_PRIVATE is off
    expect(await api.submit(first())).toMatchObject({ hash: res.hash, result: 'queued', reason: 'Song already queued' });
  });

  it('upload sends a multipart file with its name and callback field', async () => {
    const res = await api.upload(second(), { filename: 'song.mp3', callback: { url: 'http://localhost:5000/cb' } });
    expect(res).toMatchObject({ hash: songhash(second()), result: 'enqueued', job: { filename: 'song.mp3' } });
    expect(res.job?.callback?.status).toMatch(/^skipped: /);
  });

  it('job and queue show the waiting jobs in order', async () => {
    expect(await api.job(songhash(first()))).toMatchObject({ state: 'queued', position: 0, attempts: 0 });
    expect(await api.job(songhash(second()))).toMatchObject({ state: 'queued', position: 1 });
    expect(await api.queue()).toEqual({ queue: [songhash(first()), songhash(second())] });
  });

  it('info tells the limits, the tracks, the weights\' terms and that a key is required', async () => {
    expect(await api.info()).toMatchObject({
      maxUploadMb: 1,
      tracks: [...TRACKS],
      stems: [...TRACKS, 'instrumental'],
      inputFormats: ['mp3', 'wav', 'flac', 'ogg-vorbis', 'ogg-opus', 'mp4-aac'],
      outputFormats: ['mp3', 'mp3-320', 'wav', 'flac'],
      model: 'htdemucs',
      weights: { file: 'htdemucs.onnx', bundled: true, terms: expect.stringMatching(/personal and research use only/) },
      authRequired: true,
    });
  });

  it('deleteSong removes a waiting song; its job is then a 404 ApiError', async () => {
    for (const bytes of [first(), second()]) {
      const hash = songhash(bytes);
      expect(await api.deleteSong(hash)).toEqual({ hash, removed: true, stems: 0 });
      await expect(api.job(hash)).rejects.toMatchObject({ status: 404, error: 'not_found' });
    }
    expect(await api.queue()).toEqual({ queue: [] });
  });

  for (const [n, via] of [[2, 'poll'], [3, 'events']] as const) {
    it(`follow (${via}) reports each change and returns the job once done`, async () => {
      const bytes = variant(mp3, n);
      const { hash } = await api.submit(bytes);
      await claim(hash);
      const seen: JobView[] = [];
      const [done] = await Promise.all([api.follow(hash, { via, intervalMs: 20, timeoutMs: 10_000, onChange: (j) => seen.push(j) }), finish(hash, bytes)]);
      expect(done).toMatchObject({ hash, state: 'done', progress: 1 });
      expect(Object.keys(done.stems).sort()).toEqual([...TRACKS].sort());
      expect(seen.map((j) => [j.state, j.progress])).toEqual([['processing', 0], ['processing', 0.5], ['done', 1]]);
      separated = { hash, bytes };
    });
  }

  it('follow stops early when `until` holds, and gives up after its timeout saying so', async () => {
    const { hash } = await api.submit(variant(mp3, 4));
    const running = api.follow(hash, { intervalMs: 20, until: (j) => j.state === 'processing' });
    await claim(hash);
    expect(await running).toMatchObject({ state: 'processing', attempts: 1 });
    await expect(api.follow(hash, { via: 'events', timeoutMs: 300 })).rejects.toThrow(`gave up following ${hash} after 0.3 s`);
  });

  it('stem downloads a stem whole or a byte range; zip bundles the stems', async () => {
    const { hash, bytes } = separated;
    const whole = await api.stem(hash, 'bass');
    expect(whole.contentType).toBe('audio/mpeg');
    expect(Buffer.compare(whole.bytes, bytes)).toBe(0);
    const part = await api.stem(hash, 'vocals', { range: { start: 10, end: 19 } });
    expect(part.contentRange).toBe(`bytes 10-19/${bytes.length}`);
    expect(Buffer.compare(part.bytes, bytes.subarray(10, 20))).toBe(0);
    const zip = await api.zip(hash);
    expect(zip.contentType).toBe('application/zip');
    expect(Buffer.from(zip.bytes.subarray(0, 2)).toString()).toBe('PK');
  });

  it('removeStem removes by DELETE and by the lab\'s GET; deleteSong removes the stems left', async () => {
    const { hash } = separated;
    expect(await api.removeStem(hash, 'drums')).toEqual({ hash, track: 'drums', removed: true, reason: 'Track removed' });
    expect(await api.removeStem(hash, 'bass', { lab: true })).toMatchObject({ hash, track: 'bass', removed: true });
    expect(Object.keys((await api.job(hash)).stems).sort()).toEqual(['other', 'vocals']);
    await expect(api.stem(hash, 'drums')).rejects.toMatchObject({ status: 404, error: 'not_found' });
    expect(await api.deleteSong(hash)).toEqual({ hash, removed: true, stems: 2 });
  });

  it('health and ready answer their bodies', async () => {
    expect(await api.health()).toEqual({ status: 'ok' });
    expect(await api.ready()).toMatchObject({ status: 'ready', checks: { redis: 'ok', objectStore: 'ok' } });
  });
});

describe('ApiClient errors', () => {
  it('a 4xx answer throws ApiError with its status, error and detail', async () => {
    const err = await api.job('not-a-hash').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, error: 'bad_hash', detail: expect.stringContaining('56 lowercase hexadecimal') });
    expect((err as ApiError).message).toMatch(/^HTTP 400 bad_hash: /);
    await expect(api.submit(Buffer.from('not audio at all'))).rejects.toMatchObject({ status: 400, error: 'unsupported_format' });
  });

  it('without the API key every /apiv1 call is a 401 ApiError; health needs none', async () => {
    const anonymous = new ApiClient({ baseUrl: api.baseUrl });
    await expect(anonymous.queue()).rejects.toMatchObject({ status: 401, error: 'unauthorized' });
    expect(await anonymous.health()).toEqual({ status: 'ok' });
  });

  it('an aborted signal aborts the call, and a call the server does not finish in timeoutMs is aborted', async () => {
    await expect(api.info({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    const { hash } = await api.submit(variant(mp3, 7));
    // a waiting job's event stream stays open: its body never ends
    const stream = await api.request(`/apiv1/jobs/${hash}/events`, { timeoutMs: 300 });
    await expect(stream.text()).rejects.toMatchObject({ name: 'TimeoutError' });
  });
});
