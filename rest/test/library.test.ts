/**
 * The per-key library (`GET /apiv1/jobs`) and the song's name in download names
 * (Content-Disposition of a stem and of the zip, and the zip's entries), against the real app,
 * real Redis and the real s3rver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { unzipSync } from 'fflate';
import { TRACKS, songhash } from '@msaas/common';
import { asciiFallback, contentDisposition, downloadName, songStem } from '../src/download-name.ts';
import { TestWorker } from '../../common/test/test-worker.ts';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

const ALICE = 'k-alice-library-1';
const BOB = 'k-bob-library-2';
const HASH = 'cd'.repeat(28);

describe('download names', () => {
  it('are <song name>-<track>.<ext>, sanitised, with the hash only when no name is known', () => {
    expect(downloadName('short hop.mp3', HASH, 'vocals', 'mp3')).toBe('short hop-vocals.mp3');
    expect(downloadName('../../etc/passwd', HASH, 'bass', 'mp3')).toBe('passwd-bass.mp3');
    expect(downloadName('a"b<c>|d?*.mp3', HASH, 'drums', 'mp3')).toBe('a b c d-drums.mp3');
    expect(downloadName('C:\\Music\\set.mp3', HASH, 'drums', 'mp3')).toBe('set-drums.mp3');
    expect(downloadName('line\nbreak\u0000.wav', HASH, 'other', 'mp3')).toBe('line break-other.mp3');
    expect(downloadName(null, HASH, 'stems', 'zip')).toBe(`${HASH}-stems.zip`);
    expect(downloadName('...', HASH, 'vocals', 'mp3')).toBe(`${HASH}-vocals.mp3`);
    expect(songStem('x'.repeat(300) + '.mp3')).toHaveLength(120);
  });

  it('carry an ASCII filename= and, for other names, an RFC 6266 filename*=UTF-8\'\'', () => {
    expect(contentDisposition('attachment', 'short hop-stems.zip')).toBe('attachment; filename="short hop-stems.zip"');
    const header = contentDisposition('inline', 'Café “Noir” 日本-vocals.mp3');
    expect(header).toBe(`inline; filename="${asciiFallback('Café “Noir” 日本-vocals.mp3')}"; filename*=UTF-8''Caf%C3%A9%20%E2%80%9CNoir%E2%80%9D%20%E6%97%A5%E6%9C%AC-vocals.mp3`);
    expect(asciiFallback('Café “Noir” 日本-vocals.mp3')).toBe('Cafe _Noir_ __-vocals.mp3');
  });
});

describe('GET /apiv1/jobs and download names (keys on)', () => {
  let under: RestUnderTest;
  const songs: { hash: string; name: string; bytes: Buffer }[] = [];

  beforeAll(async () => {
    under = await restUnderTest('library', { API_KEYS: `alice:${ALICE},bob:${BOB}`, RATE_LIMIT_PER_MIN: '10000', SUBMIT_RATE_LIMIT_PER_MIN: '10000' });
    for (let i = 0; i < 5; i++) {
      const bytes = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 300 + i }));
      const name = i === 0 ? 'Short hop (live).mp3' : `take ${i}.mp3`;
      const res = await request(under.rest.app).post('/apiv1/separate').set('X-API-Key', ALICE).attach('file', bytes, name);
      expect(res.status).toBe(200);
      songs.push({ hash: songhash(bytes), name, bytes });
      await new Promise((r) => setTimeout(r, 5)); // distinct claim times
    }
  }, 60_000);

  afterAll(async () => {
    await under?.close();
  });

  const get = (path: string, key = ALICE) => request(under.rest.app).get(path).set('X-API-Key', key);

  it('lists the caller\'s songs newest first with names, states and durations, a page at a time', async () => {
    const first = await get('/apiv1/jobs?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.songs.map((s: { filename: string }) => s.filename)).toEqual(['take 4.mp3', 'take 3.mp3']);
    expect(first.body.songs[0]).toMatchObject({ hash: songs[4]!.hash, state: 'queued', progress: 0, stems: [] });
    expect(first.body.songs[0].audioSec).toBeGreaterThan(0.9);
    expect(typeof first.body.next).toBe('string');
    const second = await get(`/apiv1/jobs?limit=2&cursor=${first.body.next}`);
    expect(second.body.songs.map((s: { filename: string }) => s.filename)).toEqual(['take 2.mp3', 'take 1.mp3']);
    const third = await get(`/apiv1/jobs?limit=2&cursor=${second.body.next}`);
    expect(third.body.songs.map((s: { filename: string }) => s.filename)).toEqual(['Short hop (live).mp3']);
    expect(third.body.next).toBeNull();
    const all = await get('/apiv1/jobs');
    expect(all.body.songs).toHaveLength(5);
    expect(all.body.next).toBeNull();
  });

  it('shows another tenant nothing of them, and refuses a bad limit or cursor with a sentence', async () => {
    const bob = await get('/apiv1/jobs', BOB);
    expect(bob.status).toBe(200);
    expect(bob.body).toEqual({ songs: [], next: null });
    expect((await request(under.rest.app).get('/apiv1/jobs')).status).toBe(401);
    const bad = await get('/apiv1/jobs?limit=0');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: 'bad_limit', detail: expect.stringMatching(/1 to 100/) });
    expect((await get('/apiv1/jobs?cursor=yesterday')).body.error).toBe('bad_cursor');
  });

  it('names a done song\'s stem and zip (and the files in it) after the song, and lists its duration', async () => {
    const { hash, bytes } = songs[0]!;
    const worker = new TestWorker(under.rest.deps.queue);
    await worker.claim(hash);
    for (const t of TRACKS) await under.rest.deps.store.putStem(hash, t, bytes);
    await worker.recordStems(hash);
    await worker.complete(hash, 12.5);

    const stem = await get(`/apiv1/track/${hash}/vocals.mp3`);
    expect(stem.status).toBe(200);
    expect(stem.headers['content-disposition']).toBe('inline; filename="Short hop (live)-vocals.mp3"');
    const zip = await get(`/apiv1/jobs/${hash}/zip`).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(zip.status).toBe(200);
    expect(zip.headers['content-disposition']).toBe('attachment; filename="Short hop (live)-stems.zip"');
    expect(Object.keys(unzipSync(new Uint8Array(zip.body as Buffer))).sort()).toEqual(TRACKS.map((t) => `Short hop (live)-${t}.mp3`).sort());

    const listed = (await get('/apiv1/jobs')).body.songs.find((s: { hash: string }) => s.hash === hash);
    expect(listed).toMatchObject({ state: 'done', durationSec: 12.5, stems: [...TRACKS] });
    expect(listed.finishedAt).toEqual(expect.any(String));
  });
});
