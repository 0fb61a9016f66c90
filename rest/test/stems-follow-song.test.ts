import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { songhash, type OutputFormat, type Stem } from '@msaas/common';
import { createStemEncoder, readWav24 } from '@msaas/common/audio-encode/index';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { TestWorker, storeSeparated } from '../../common/test/test-worker.ts';
import { mixStems } from '../src/mix-sources.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

// What a song holds drives what it serves: a FLAC-only song's stems are .flac and FLAC; a
// `vocals,instrumental` song mixes from those two; a run for another format keeps the files there.

const RATE = 44_100;
let under: RestUnderTest;

beforeAll(async () => {
  under = await restUnderTest('stems-follow-song');
});

afterAll(async () => {
  await under?.close();
});

const tone = (hz: number, amp: number, frames = RATE): Float32Array => new Float32Array(frames).map((_, i) => amp * Math.sin((2 * Math.PI * hz * i) / RATE));

/** A song separated as `format` with only `stems`, each a tone, as a worker leaves it. */
async function separatedSong(stems: Record<string, Float32Array>, format: OutputFormat): Promise<string> {
  const hash = randomBytes(28).toString('hex');
  const { queue, store } = under.rest.deps;
  const names = Object.keys(stems) as Stem[];
  await queue.submit({ hash, sizeBytes: 1, stems: names, format });
  const worker = new TestWorker(queue);
  await worker.claim(hash);
  for (const [stem, samples] of Object.entries(stems)) {
    const enc = await createStemEncoder(format, RATE, 2);
    enc.encode([samples, samples]);
    await store.putStem(hash, stem as Stem, enc.finish(), format === 'flac' ? 'flac' : format === 'wav' ? 'wav' : 'mp3');
  }
  expect(await queue.recordStems(worker.id, hash, names)).toBe('owned');
  await worker.complete(hash);
  return hash;
}

const binary = (res: request.Response, cb: (err: Error | null, body: Buffer) => void): void => {
  const parts: Buffer[] = [];
  res.on('data', (c: Buffer) => parts.push(c));
  res.on('end', () => cb(null, Buffer.concat(parts)));
};

describe('a mix sums the stems the song has', () => {
  it('mixStems: the four model stems; a karaoke pair; instrumental left out beside all its parts, standing for them otherwise', () => {
    expect(mixStems(['drums', 'bass', 'other', 'vocals'])).toEqual(['drums', 'bass', 'other', 'vocals']);
    expect(mixStems(['vocals', 'instrumental'])).toEqual(['vocals', 'instrumental']);
    expect(mixStems(['drums', 'bass', 'other', 'vocals', 'instrumental'])).toEqual(['drums', 'bass', 'other', 'vocals']);
    expect(mixStems(['drums', 'vocals', 'instrumental'])).toEqual(['vocals', 'instrumental']);
    expect(mixStems(['vocals'])).toEqual(['vocals']);
    expect(mixStems([])).toEqual([]);
  });

  it('a FLAC-only vocals,instrumental song: its stems are .flac links with FLAC bytes, and its mix (a karaoke pair) downloads with the gains applied', async () => {
    const vocals = tone(440, 0.3);
    const instrumental = tone(220, 0.2);
    const hash = await separatedSong({ vocals, instrumental }, 'flac');
    const app = under.rest.app;

    const job = (await request(app).get(`/apiv1/jobs/${hash}`)).body;
    expect(job.formats).toEqual(['flac']);
    expect(job.stems).toEqual({ vocals: `/apiv1/track/${hash}/vocals.flac`, instrumental: `/apiv1/track/${hash}/instrumental.flac` });
    const stem = await request(app).get(job.stems.vocals).buffer(true).parse(binary);
    expect(stem.status).toBe(200);
    expect(stem.headers['content-type']).toBe('audio/flac');
    expect((stem.body as Buffer).toString('latin1', 0, 4)).toBe('fLaC');

    // the mix of the two, in WAV (lossless both ways): vocals alone, instrumental alone, both
    const mix = async (q: string): Promise<Float32Array> => {
      const res = await request(app).get(`/apiv1/jobs/${hash}/mix?${q}&format=wav`).buffer(true).parse(binary);
      expect(res.status, String(res.body)).toBe(200);
      expect(res.headers['content-type']).toBe('audio/wav');
      return Float32Array.from(readWav24(new Uint8Array(res.body as Buffer)).channels[0]!, (v) => v / 8_388_608);
    };
    const near = (a: Float32Array, b: (i: number) => number): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b(i))), 0);
    const onlyVocals = await mix('vocals=1&instrumental=0');
    expect(onlyVocals.length).toBe(RATE);
    expect(near(onlyVocals, (i) => vocals[i]!)).toBeLessThan(1e-5);
    expect(near(await mix('vocals=0&instrumental=2'), (i) => 2 * instrumental[i]!)).toBeLessThan(1e-5);
    expect(near(await mix('vocals=1&instrumental=1'), (i) => vocals[i]! + instrumental[i]!)).toBeLessThan(1e-5);
    // the default format is still MP3, named after the song
    const mp3 = await request(app).get(`/apiv1/jobs/${hash}/mix?vocals=1`).buffer(true).parse(binary);
    expect(mp3.status).toBe(200);
    expect(mp3.headers['content-type']).toBe('audio/mpeg');
    expect(mp3.headers['content-disposition']).toMatch(/-mix\.mp3/);
  });

  it('a song with no stem left answers the mix 404', async () => {
    const hash = await separatedSong({ vocals: tone(440, 0.3) }, 'wav');
    expect((await request(under.rest.app).delete(`/apiv1/track/${hash}/vocals`)).status).toBe(200);
    const res = await request(under.rest.app).get(`/apiv1/jobs/${hash}/mix`);
    expect(res.status).toBe(404);
  });
});

describe('a run for another format keeps the files there', () => {
  it('while a finished MP3 song is run again for FLAC, its MP3 stems and zip answer 200 and the job lists them; the FLAC ones are not_ready', async () => {
    const bytes = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 2501 }));
    const hash = songhash(bytes);
    const stemBytes = new Uint8Array(await synthesizeMp3({ seconds: 1, seed: 2502 }));
    await storeSeparated(under.rest.deps, hash, stemBytes);
    const app = under.rest.app;

    const rerun = await request(app).post('/apiv1/separate').send({ mp3: bytes.toString('base64'), format: 'flac' });
    expect(rerun.status).toBe(200);
    expect(rerun.body.result).toBe('enqueued');
    expect((await under.rest.deps.queue.getJob(hash))?.state).toBe('queued');

    const view = (await request(app).get(`/apiv1/jobs/${hash}`)).body;
    expect(view.files.mp3).toMatchObject({ drums: `/apiv1/track/${hash}/drums.mp3` });
    for (const t of ['drums', 'bass', 'other', 'vocals']) {
      const res = await request(app).get(`/apiv1/track/${hash}/${t}.mp3`).buffer(true).parse(binary);
      expect(res.status, t).toBe(200);
      expect(Buffer.compare(res.body as Buffer, Buffer.from(stemBytes))).toBe(0);
    }
    const zip = await request(app).get(`/apiv1/jobs/${hash}/zip`).buffer(true).parse(binary);
    expect(zip.status).toBe(200);
    expect((zip.body as Buffer).readUInt32LE(0)).toBe(0x04034b50);
    const flac = await request(app).get(`/apiv1/track/${hash}/drums.flac`);
    expect(flac.status).toBe(404);
    expect(flac.body.error).toBe('not_ready');
  });
});
