import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { TRACKS, songhash } from '@msaas/common';
import type { RestService } from '../src/bootstrap.ts';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { TestWorker, storeSeparated } from '../../common/test/test-worker.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';
import { expectDocumented } from '../../test/helpers/openapi.ts';

let under: RestUnderTest;
let rest: RestService;
let mp3: Buffer;
let hash: string;

beforeAll(async () => {
  under = await restUnderTest('api', { MAX_UPLOAD_MB: '1' });
  rest = under.rest;
  mp3 = Buffer.from(await synthesizeMp3({ seconds: 2, seed: 7 }));
  hash = songhash(mp3);
});

afterAll(async () => {
  await under?.close();
});

const app = () => rest.app;

/** Also: the answer is one the API document lists for its route (status, type, body). */
async function expectJsonError(res: request.Response, status: number, code?: string): Promise<void> {
  await expectDocumented(res as unknown as Parameters<typeof expectDocumented>[0]);
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/application\/json/);
  expect(typeof res.body.error).toBe('string');
  expect(typeof res.body.detail).toBe('string');
  if (code) expect(res.body.error).toBe(code);
  expect(JSON.stringify(res.body)).not.toMatch(/\n\s+at /); // no stack traces
}

describe('lab-compatible endpoints', () => {
  it('GET / answers 200 for the load balancer probe', async () => {
    const res = await request(app()).get('/');
    expect(res.status).toBe(200);
  });

  it('POST /apiv1/separate with the lab client\'s JSON enqueues the song and answers {hash, reason}', async () => {
    const res = await request(app())
      .post('/apiv1/separate')
      .set('Content-type', 'application/json')
      .send(JSON.stringify({ mp3: mp3.toString('base64'), callback: { url: 'http://localhost:5000', data: { mp3: 'x.mp3', data: 'to be returned' } } }));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body).toMatchObject({ hash, reason: 'Song enqueued for separation' });
    expect(hash).toMatch(/^[0-9a-f]{56}$/);
    // a loopback callback is accepted but recorded as skipped (CALLBACK_ALLOW_PRIVATE is off)
    expect(res.body.job.callback.status).toMatch(/^skipped: .*loopback/);
    expect(await rest.deps.store.hasUpload(hash)).toBe(true);
  });

  it('the same song twice is one job ("Song already queued")', async () => {
    const res = await request(app()).post('/apiv1/separate').send({ mp3: mp3.toString('base64') });
    expect(res.status).toBe(200);
    expect(res.body.reason).toBe('Song already queued');
    const q = await request(app()).get('/apiv1/queue');
    expect(q.body.queue.filter((h: string) => h === hash)).toHaveLength(1);
  });

  it('GET /apiv1/queue works with the lab client\'s 4-byte body `null` and JSON content type', async () => {
    const res = await request(app()).get('/apiv1/queue').set('Content-type', 'application/json').send('null');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body.queue).toContain(hash);
  });

  it('accepts a 0.35 MB JSON upload like the lab\'s short clips', async () => {
    const big = Buffer.from(await synthesizeMp3({ seconds: 14, seed: 3 }));
    const body = JSON.stringify({ mp3: big.toString('base64'), callback: { url: 'http://localhost:5000', data: {} } });
    expect(body.length).toBeGreaterThan(0.3e6);
    const res = await request(app()).post('/apiv1/separate').set('Content-type', 'application/json').send(body);
    expect(res.status).toBe(200);
    expect(res.body.hash).toBe(songhash(big));
  });

  it('multipart upload (field "file") enqueues too', async () => {
    const other = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 11 }));
    const res = await request(app()).post('/apiv1/separate').attach('file', other, { filename: 'song.mp3', contentType: 'audio/mpeg' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ hash: songhash(other), reason: 'Song enqueued for separation' });
    expect(res.body.job.filename).toBe('song.mp3');
  });

  it('keeps a multipart filename sent as raw UTF-8 (as browsers send it) intact', async () => {
    const other = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 12 }));
    const res = await request(app()).post('/apiv1/separate').attach('file', other, { filename: 'Café – Ünïcode.mp3', contentType: 'audio/mpeg' });
    expect(res.status).toBe(200);
    expect(res.body.job.filename).toBe('Café – Ünïcode.mp3');
  });

  it('keeps FIFO order in /apiv1/queue', async () => {
    const res = await request(app()).get('/apiv1/queue');
    expect(res.body.queue[0]).toBe(hash);
  });
});

describe('bad input gets a 4xx JSON {error, detail}', () => {
  it('400 for invalid base64', async () => {
    await expectJsonError(await request(app()).post('/apiv1/separate').send({ mp3: '!!!not base64!!!' }), 400, 'bad_base64');
  });
  it('400 unsupported_format for bytes that are no audio format taken', async () => {
    await expectJsonError(await request(app()).post('/apiv1/separate').send({ mp3: Buffer.from('hello world, not audio').toString('base64') }), 400, 'unsupported_format');
  });
  it('400 for a missing mp3 field and for wrong types', async () => {
    await expectJsonError(await request(app()).post('/apiv1/separate').send({}), 400, 'bad_request');
    await expectJsonError(await request(app()).post('/apiv1/separate').send({ mp3: 42 }), 400, 'bad_request');
    await expectJsonError(await request(app()).post('/apiv1/separate').send([1, 2]), 400, 'bad_request');
  });
  it('400 for malformed JSON', async () => {
    await expectJsonError(await request(app()).post('/apiv1/separate').set('Content-Type', 'application/json').send('{"mp3":'), 400, 'bad_json');
  });
  it('400 for a malformed callback, 400 for an unknown model', async () => {
    await expectJsonError(await request(app()).post('/apiv1/separate').send({ mp3: mp3.toString('base64'), callback: { url: 'ftp://x' } }), 400, 'bad_callback');
    await expectJsonError(await request(app()).post('/apiv1/separate').send({ mp3: mp3.toString('base64'), callback: 'nope' }), 400);
    await expectJsonError(await request(app()).post('/apiv1/separate').send({ mp3: mp3.toString('base64'), model: 'spleeter' }), 400, 'bad_model');
  });
  it('413 for a JSON upload over MAX_UPLOAD_MB', async () => {
    const huge = Buffer.alloc(1.2 * 2 ** 20, 0xff).toString('base64');
    await expectJsonError(await request(app()).post('/apiv1/separate').send({ mp3: huge }), 413, 'payload_too_large');
  });
  it('413 for a multipart upload over MAX_UPLOAD_MB', async () => {
    await expectJsonError(await request(app()).post('/apiv1/separate').attach('file', Buffer.alloc(1.1 * 2 ** 20, 1), 'big.mp3'), 413, 'payload_too_large');
  });
  it('400 for multipart without a file, and for an empty file', async () => {
    await expectJsonError(await request(app()).post('/apiv1/separate').field('callback', '{}'), 400);
    await expectJsonError(await request(app()).post('/apiv1/separate').attach('file', Buffer.alloc(0), 'empty.mp3'), 400);
  });
  it('400 for a bad songhash (including path traversal) and a bad track; 404 for an absent stem and a song not done yet', async () => {
    await expectJsonError(await request(app()).get('/apiv1/track/abc/bass.mp3'), 400, 'bad_hash');
    await expectJsonError(await request(app()).get(`/apiv1/track/..%2F..%2Fetc%2Fpasswd/bass`), 400, 'bad_hash');
    await expectJsonError(await request(app()).get(`/apiv1/track/${hash}/guitar.mp3`), 400, 'bad_track');
    await expectJsonError(await request(app()).get(`/apiv1/track/${'e'.repeat(56)}/bass.mp3`), 404, 'not_found');
    await expectJsonError(await request(app()).get(`/apiv1/track/${hash}/bass.mp3`), 404, 'not_ready');
    await expectJsonError(await request(app()).get(`/apiv1/remove/${hash}/drums`), 404, 'not_found');
  });
  it('404 JSON for an unknown route and an unknown job', async () => {
    await expectJsonError(await request(app()).get('/apiv1/nope'), 404, 'not_found');
    await expectJsonError(await request(app()).get(`/apiv1/jobs/${'0'.repeat(56)}`), 404, 'not_found');
  });
});

describe('jobs, stems, removal', () => {
  it('GET /apiv1/jobs/:hash shows state, position and progress', async () => {
    const res = await request(app()).get(`/apiv1/jobs/${hash}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ hash, state: 'queued', progress: 0, position: 0, attempts: 0, stems: {} });
  });

  it('serves a separated song\'s stems (streamed, with Range) and answers "already separated"', async () => {
    const done = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 21 }));
    const h = songhash(done);
    await storeSeparated(rest.deps, h, done);

    const again = await request(app()).post('/apiv1/separate').send({ mp3: done.toString('base64') });
    expect(again.body.reason).toBe('Song already separated');

    const full = await request(app()).get(`/apiv1/track/${h}/bass.mp3`).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(full.status).toBe(200);
    expect(full.headers['content-type']).toBe('audio/mpeg');
    expect(Buffer.compare(full.body as Buffer, done)).toBe(0);

    const alias = await request(app()).get(`/apiv1/track/${h}/base.mp3`);
    expect(alias.status).toBe(200);

    const part = await request(app()).get(`/apiv1/track/${h}/vocals`).set('Range', 'bytes=10-19');
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-19/${done.length}`);
    await expectJsonError(await request(app()).get(`/apiv1/track/${h}/vocals`).set('Range', `bytes=${done.length + 10}-`), 416);

    const job = await request(app()).get(`/apiv1/jobs/${h}`);
    expect(Object.keys(job.body.stems).sort()).toEqual([...TRACKS].sort());

    const zip = await request(app()).get(`/apiv1/jobs/${h}/zip`);
    expect(zip.status).toBe(200);
    expect(zip.headers['content-type']).toBe('application/zip');

    const removed = await request(app()).delete(`/apiv1/remove/${h}/drums.mp3`);
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ hash: h, track: 'drums', removed: true });
    expect((await request(app()).get(`/apiv1/track/${h}/drums.mp3`)).status).toBe(404);
    const viaGet = await request(app()).get(`/apiv1/remove/${h}/bass`);
    expect(viaGet.status).toBe(200);
    const viaTrack = await request(app()).delete(`/apiv1/track/${h}/other`);
    expect(viaTrack.status).toBe(200);
    const after = await request(app()).get(`/apiv1/jobs/${h}`);
    expect(Object.keys(after.body.stems)).toEqual(['vocals']);

    // with stems removed the song is separated again on request
    const rerun = await request(app()).post('/apiv1/separate').send({ mp3: done.toString('base64') });
    expect(rerun.body.reason).toBe('Song enqueued for separation');
    // while it is separated again, the stem left in the bucket is not served as the song's
    await expectJsonError(await request(app()).get(`/apiv1/track/${h}/vocals`), 404, 'not_ready');
    await expectJsonError(await request(app()).get(`/apiv1/jobs/${h}/zip`), 404, 'not_ready');

    const del = await request(app()).delete(`/apiv1/jobs/${h}`);
    expect(del.status).toBe(200);
    expect((await request(app()).get(`/apiv1/jobs/${h}`)).status).toBe(404);
  });

  it('streams job events over SSE and closes after a terminal state', async () => {
    const clip = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 31 }));
    const h = songhash(clip);
    await request(app()).post('/apiv1/separate').send({ mp3: clip.toString('base64') });
    const server = rest.app.listen(0);
    try {
      const port = (server.address() as { port: number }).port;
      const events: { state: string; progress: number }[] = [];
      const res = await fetch(`http://127.0.0.1:${port}/apiv1/jobs/${h}/events`);
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      const worker = new TestWorker(rest.deps.queue);
      setTimeout(() => void worker.claim(h).then(() => worker.progress(h, 0.5)), 150);
      setTimeout(() => void worker.fail(h, 'test'), 300);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value);
        let idx: number;
        while ((idx = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, idx);
          buffer = buffer.slice(idx + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.startsWith('event: job') && data) events.push(JSON.parse(data.slice(6)));
        }
      }
      expect(events[0]!.state).toBe('queued');
      expect(events.some((e) => e.progress === 0.5)).toBe(true);
      expect(events.at(-1)!.state).toBe('failed');
    } finally {
      server.close();
    }
  });
});

describe('operations', () => {
  it('/healthz, /readyz and /metrics', async () => {
    expect((await request(app()).get('/healthz')).body).toEqual({ status: 'ok' });
    const ready = await request(app()).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ redis: 'ok', objectStore: 'ok' });
    const metrics = await request(app()).get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/msaas_http_requests_total/);
    expect(metrics.text).toMatch(/msaas_queue_length \d+/);
    expect(metrics.text).not.toMatch(/msaas_job_duration_seconds/); // job durations are the worker's metric
  });
  it('/apiv1/info tells the upload limit', async () => {
    expect((await request(app()).get('/apiv1/info')).body).toMatchObject({ maxUploadMb: 1, tracks: TRACKS });
  });

  it('/apiv1/info lists the stems, the input formats taken and the output formats offered', async () => {
    expect((await request(app()).get('/apiv1/info')).body).toMatchObject({
      stems: [...TRACKS, 'instrumental'],
      inputFormats: ['mp3', 'wav', 'flac', 'ogg-vorbis', 'ogg-opus', 'mp4-aac'],
      outputFormats: ['mp3', 'mp3-320', 'wav', 'flac'],
    });
  });
  it('sets security headers and hides the framework', async () => {
    const res = await request(app()).get('/healthz');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});
