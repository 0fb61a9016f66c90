import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import type { RestService } from '../src/bootstrap.ts';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { variant } from '../../test/reliability/support.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

/** What the frame scan at submit decides: the duration cap and the audio-minutes quota. */
describe('audio length at submit', () => {
  const KEY = 'quota-key-0123456789abcdef';
  let under: RestUnderTest;
  let rest: RestService;
  let twoSeconds: Buffer;
  const submit = (mp3: Buffer) => request(rest.app).post('/apiv1/separate').set('X-API-Key', KEY).send({ mp3: mp3.toString('base64') });

  beforeAll(async () => {
    // 3 s a day, 10 s per song
    under = await restUnderTest('quota', { API_KEYS: `quinn:${KEY}`, MAX_AUDIO_MINUTES_PER_DAY: '0.05', MAX_DURATION_SEC: '10' });
    rest = under.rest;
    twoSeconds = Buffer.from(await synthesizeMp3({ seconds: 2, seed: 71 }));
  }, 60_000);
  afterAll(async () => {
    await under?.close();
  });

  it("counts each song's minutes from its frames and answers 429 quota_exceeded past the day's limit, with the reset time", async () => {
    expect((await submit(twoSeconds)).body.result).toBe('enqueued');
    // the same song again is already queued: no new minutes
    expect((await submit(twoSeconds)).body.result).toBe('queued');
    const over = await submit(variant(twoSeconds, 1));
    expect(over.status).toBe(429);
    expect(over.body.error).toBe('quota_exceeded');
    expect(over.body.detail).toMatch(/0\.03 minutes of audio today.*MAX_AUDIO_MINUTES_PER_DAY=0\.05.*00:00 UTC/);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(over.headers['retry-after'])).toBeLessThanOrEqual(86_400);
  });

  it('refuses a song over MAX_DURATION_SEC at submit with 400 too_long, before storing it', async () => {
    const long = Buffer.from(await synthesizeMp3({ seconds: 11, seed: 72 }));
    const res = await submit(long);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'too_long' });
    expect(res.body.detail).toMatch(/11 s long; the limit is 10 s/);
  });
});

describe('compressed request bodies', () => {
  let under: RestUnderTest;
  beforeAll(async () => {
    under = await restUnderTest('encoded');
  });
  afterAll(async () => {
    await under?.close();
  });

  it('refuses gzip and brotli bodies with 415 unsupported_encoding before inflating them (a 150-byte brotli bomb costs nothing)', async () => {
    const { brotliCompressSync, gzipSync } = await import('node:zlib');
    const bomb = brotliCompressSync(Buffer.from(`{"mp3":"${'A'.repeat(64 * 2 ** 20)}"}`));
    expect(bomb.length).toBeLessThan(4096);
    for (const [encoding, body] of [['br', bomb], ['gzip', gzipSync(Buffer.from('{"mp3":"aGVsbG8="}'))]] as const) {
      const res = await request(under.rest.app).post('/apiv1/separate').set('Content-Type', 'application/json').set('Content-Encoding', encoding).send(body);
      expect(res.status, encoding).toBe(415);
      expect(res.body.error).toBe('unsupported_encoding');
      expect(res.body.detail).toMatch(new RegExp(`Content-Encoding "${encoding}"`));
    }
    // identity and no encoding are the lab's way: accepted as before
    const plain = await request(under.rest.app).post('/apiv1/separate').set('Content-Encoding', 'identity').send({ mp3: 'aGVsbG8=' });
    expect(plain.status).toBe(400);
    expect(plain.body.error).toBe('unsupported_format');
  });
});
