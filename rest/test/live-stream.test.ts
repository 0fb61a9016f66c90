// The live MP3 stream and the raw pieces (issue 21), against a real rest app on real Redis and a
// real S3 server: the tests play the worker through the queue's real transitions — pieces written
// in the contract's layout (live/<hash>/<seq>.f32), then reportProgress — so no model runs.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { MPEGDecoder } from 'mpg123-decoder';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRACKS, type OutputFormat, type Stem } from '@msaas/common';
import { createStemEncoder } from '@msaas/common/audio-encode/index';
import { TestWorker } from '../../common/test/test-worker.ts';
import { sdr } from '../../worker/fixtures/sdr.ts';
import { waitFor } from '../../test/helpers/env.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';
import { LIVE_MP3_DELAY } from '../src/live-audio.ts';

const RATE = 44_100;
/** An MP3 frame: the length tolerance of a decoded stream. */
const MP3_FRAME = 1152;
const ALICE = { 'X-API-Key': 'alice-key-1' };
const BOB = { 'X-API-Key': 'bob-key-2' };

let under: RestUnderTest;
let server: http.Server;
let port: number;
/** The same app on a Unix socket: its kernel buffers (~240 KB) are far smaller than loopback TCP's (~4 MB), so a stalled reader shows on a short song. */
let unixServer: http.Server;
let socketPath: string;
/** Bytes of pieces the app has asked the store for (counted around the real store's getPiece). */
let pieceBytesRead = 0;

beforeAll(async () => {
  under = await restUnderTest('live', { API_KEYS: 'alice:alice-key-1,bob:bob-key-2', RATE_LIMIT_PER_MIN: '100000', STREAMS_PER_CLIENT: '4', STREAM_MAX_LIFETIME_SEC: '60' });
  const store = under.rest.deps.store;
  const getPiece = store.getPiece.bind(store);
  store.getPiece = (hash, seq, range) => {
    pieceBytesRead += range ? range.end - range.start + 1 : 0;
    return getPiece(hash, seq, range);
  };
  server = http.createServer(under.rest.app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  socketPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'msaas-live-')), 'rest.sock');
  unixServer = http.createServer(under.rest.app);
  await new Promise<void>((r) => unixServer.listen(socketPath, r));
  // The app subscribes to job events in the background: wait until it listens.
  const { redis, keys } = under.rest.deps.queue;
  await waitFor(async () => ((await redis.pubsub('NUMSUB', keys.events)) as [string, number])[1] > 0, { timeoutMs: 10_000, what: 'the job-event subscription' });
}, 60_000);

afterAll(async () => {
  for (const srv of [server, unixServer]) {
    srv?.closeAllConnections();
    await new Promise((r) => srv?.close(r));
  }
  if (socketPath) rmSync(path.dirname(socketPath), { recursive: true, force: true });
  await under?.close();
});

type Stereo = [Float32Array, Float32Array];

/** A song as the worker would publish it: four model stems and where its pieces end. */
interface Song {
  hash: string;
  frames: number;
  stems: Record<(typeof TRACKS)[number], Stereo>;
  ends: number[];
  worker: TestWorker;
  published: number;
  /** Whether every report carries the song's length; else only the last piece's does (the worker's decoder finds the length at the song's end). */
  knownTotal: boolean;
}

function stereo(frames: number, f: (ch: 0 | 1, t: number) => number): Stereo {
  const out: Stereo = [new Float32Array(frames), new Float32Array(frames)];
  for (const ch of [0, 1] as const) for (let i = 0; i < frames; i++) out[ch][i] = f(ch, i / RATE);
  return out;
}

/** Tonal stems (chords with slow tremolo): what an MP3 encodes well, so the SDR measures the stream, not LAME. */
function chord(freqs: number[], amp: number, tremoloHz: number): (ch: 0 | 1, t: number) => number {
  return (ch, t) => {
    let s = 0;
    for (const [j, f] of freqs.entries()) s += Math.sin(2 * Math.PI * (f * (1 + 0.003 * ch)) * t + j);
    return (amp / freqs.length) * s * (0.75 + 0.25 * Math.sin(2 * Math.PI * tremoloHz * t));
  };
}

const tonal = (frames: number): Song['stems'] => ({
  drums: stereo(frames, chord([110, 165], 0.3, 2)),
  bass: stereo(frames, chord([55, 82.5], 0.4, 0.5)),
  other: stereo(frames, chord([262, 330, 392], 0.3, 0.7)),
  vocals: stereo(frames, chord([440, 554, 659, 880], 0.5, 3)),
});

/** Piece ends every `every` frames, the last piece taking the rest. */
const endsOf = (frames: number, every: number): number[] => {
  const ends: number[] = [];
  for (let e = every; e < frames; e += every) ends.push(e);
  ends.push(frames);
  return ends;
};

/** A song claimed by alice (and by `others`), being run by a test worker. */
async function runningSong(stems: Song['stems'], ends: number[], opts: { wanted?: Stem[]; knownTotal?: boolean; format?: OutputFormat } = {}): Promise<Song> {
  const hash = randomBytes(28).toString('hex');
  const { queue } = under.rest.deps;
  await queue.submit({ hash, sizeBytes: 1, tenant: 'alice', ...(opts.wanted ? { stems: opts.wanted } : {}), ...(opts.format ? { format: opts.format } : {}) });
  const worker = new TestWorker(queue);
  await worker.claim(hash);
  return { hash, frames: ends.at(-1)!, stems, ends, worker, published: 0, knownTotal: opts.knownTotal ?? false };
}

/** A piece in the contract's layout: per stem (drums, bass, other, vocals) its left then its right channel, float32 LE. */
function pieceBytes(song: Song, seq: number): Uint8Array {
  const start = seq === 0 ? 0 : song.ends[seq - 1]!;
  const n = song.ends[seq]! - start;
  const out = new Float32Array(n * 8);
  for (const [k, t] of TRACKS.entries()) for (const ch of [0, 1] as const) out.set(song.stems[t][ch].subarray(start, start + n), (k * 2 + ch) * n);
  return new Uint8Array(out.buffer);
}

/** Stores pieces up to `count` (exclusive), then reports them as the worker does: the piece first, then the record. */
async function publish(song: Song, count: number, opts: { from?: number; worker?: TestWorker } = {}): Promise<void> {
  const { queue, store } = under.rest.deps;
  const from = opts.from ?? song.published;
  const worker = opts.worker ?? song.worker;
  for (let seq = from; seq < count; seq++) {
    await store.putPiece(song.hash, seq, pieceBytes(song, seq));
    const outcome = await queue.reportProgress(worker.id, song.hash, (0.9 * (seq + 1)) / song.ends.length, {
      readyFrames: song.ends[seq]!,
      totalFrames: song.knownTotal || seq === song.ends.length - 1 ? song.frames : null,
      pieceEnds: song.ends.slice(0, seq + 1),
    });
    expect(outcome).toBe('owned');
  }
  song.published = Math.max(song.published, count);
}

async function finish(song: Song, worker = song.worker): Promise<void> {
  await worker.recordStems(song.hash);
  await worker.complete(song.hash);
}

interface LiveClient {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes(): Buffer;
  /** Resolves once the response is over: `complete` false when the connection closed before the body's end. */
  ended: Promise<{ complete: boolean }>;
  isEnded(): boolean;
  pause(): void;
  resume(): void;
  close(): void;
}

function openLive(url: string, headers: Record<string, string> = ALICE, opts: { unix?: boolean } = {}): Promise<LiveClient> {
  return new Promise((resolve, reject) => {
    const where = opts.unix ? { socketPath } : { host: '127.0.0.1', port };
    const req = http.get({ ...where, path: url, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let ended = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined);
      const endedP = new Promise<{ complete: boolean }>((r) => res.once('close', () => ((ended = true), r({ complete: res.complete }))));
      resolve({
        status: res.statusCode!,
        headers: res.headers,
        bytes: () => Buffer.concat(chunks),
        ended: endedP,
        isEnded: () => ended,
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

const livePath = (hash: string, stem: Stem): string => `/apiv1/jobs/${hash}/live/${stem}.mp3`;

async function decodeMp3(bytes: Uint8Array): Promise<Stereo> {
  const decoder = new MPEGDecoder({ enableGapless: true });
  await decoder.ready;
  try {
    const out = decoder.decode(bytes);
    return [out.channelData[0]!.slice(), (out.channelData[1] ?? out.channelData[0]!).slice()];
  } finally {
    decoder.free();
  }
}

/** The decoded stream's offset against the song (0 with a gapless Info tag, the codec delay without): the shift with the best SDR over its first seconds. */
function alignment(decoded: Stereo, ref: Stereo): number {
  const span = Math.min(2 * RATE, ref[0].length);
  let best = 0;
  let bestDb = -Infinity;
  for (let shift = 0; shift <= 2 * MP3_FRAME; shift++) {
    const db = sdr([ref[0].subarray(0, span)], [decoded[0].subarray(shift, shift + span)]).db;
    if (db > bestDb) [best, bestDb] = [shift, db];
  }
  return best;
}

/** SDR of the decoded stream (aligned) against the song, and its length less the offset. */
function compare(decoded: Stereo, ref: Stereo): { shift: number; db: number; length: number } {
  const shift = alignment(decoded, ref);
  const est: Stereo = [decoded[0].subarray(shift), decoded[1].subarray(shift)];
  return { shift, db: sdr(ref, est).db, length: est[0].length };
}

const sum = (parts: Stereo[]): Stereo => {
  const n = parts[0]![0].length;
  const out: Stereo = [new Float32Array(n), new Float32Array(n)];
  for (const ch of [0, 1] as const) for (const p of parts) for (let i = 0; i < n; i++) out[ch][i] = out[ch][i]! + p[ch][i]!;
  return out;
};

describe('live MP3 stream of a running job', () => {
  it('starts with what is final, continues as pieces appear, ends at the song\'s end, and decodes to the stem (≥ 25 dB, length ±1 frame)', async () => {
    const frames = Math.round(20.5 * RATE);
    const song = await runningSong(tonal(frames), endsOf(frames, 5 * RATE));
    await publish(song, 1);
    const live = await openLive(livePath(song.hash, 'vocals'));
    expect(live.status).toBe(200);
    expect(live.headers['content-type']).toBe('audio/mpeg');
    expect(live.headers['content-length']).toBeUndefined();
    // The first piece (5 s) arrives, and nothing past it.
    const first = await waitFor(async () => {
      const d = await decodeMp3(live.bytes());
      return d[0].length >= 4 * RATE ? d : null;
    }, { timeoutMs: 10_000, what: '4 s of the first piece' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await decodeMp3(live.bytes()))[0].length).toBeLessThanOrEqual(5 * RATE + 2 * MP3_FRAME);
    expect(first[0].length).toBeGreaterThan(0);
    expect(live.isEnded()).toBe(false);

    await publish(song, 3);
    await waitFor(async () => (await decodeMp3(live.bytes()))[0].length >= 14 * RATE, { timeoutMs: 10_000, what: 'the third piece' });
    expect(live.isEnded()).toBe(false);
    await publish(song, song.ends.length);
    await finish(song);
    const { complete } = await live.ended;
    expect(complete).toBe(true);

    const c = compare(await decodeMp3(live.bytes()), song.stems.vocals);
    process.stdout.write(`[live] vocals, ${song.ends.length} pieces, length unknown until the last: ${live.bytes().length} B, offset ${c.shift} frames, length ${c.length} vs ${frames} frames, SDR ${c.db.toFixed(1)} dB\n`);
    expect(c.db).toBeGreaterThanOrEqual(25);
    // No Info tag possible: the codecs' delay stays in front (LIVE_MP3_DELAY).
    expect(Math.abs(c.shift - LIVE_MP3_DELAY)).toBeLessThanOrEqual(2);
    expect(Math.abs(c.length - frames)).toBeLessThanOrEqual(MP3_FRAME);
  }, 60_000);

  it('instrumental is drums + bass + other summed from the pieces; with the song\'s length known at the start the stream is gapless (Info tag: exact length, no offset)', async () => {
    const frames = Math.round(8.2 * RATE);
    const song = await runningSong(tonal(frames), endsOf(frames, 3 * RATE), { wanted: ['vocals', 'instrumental'], knownTotal: true });
    await publish(song, 3);
    const live = await openLive(livePath(song.hash, 'instrumental'));
    expect(live.status).toBe(200);
    await finish(song);
    expect((await live.ended).complete).toBe(true);
    const c = compare(await decodeMp3(live.bytes()), sum([song.stems.drums, song.stems.bass, song.stems.other]));
    process.stdout.write(`[live] instrumental, length known: offset ${c.shift}, length ${c.length} vs ${frames}, SDR ${c.db.toFixed(1)} dB\n`);
    expect(c.db).toBeGreaterThanOrEqual(25);
    expect(c.shift).toBe(0);
    expect(c.length).toBe(frames);
  }, 60_000);

  it('a sine through uneven piece boundaries has no discontinuity: around every boundary it decodes as well as elsewhere', async () => {
    const frames = 6 * RATE;
    const sine = stereo(frames, (_ch, t) => 0.5 * Math.sin(2 * Math.PI * 441 * t));
    const stems = { ...tonal(frames), vocals: sine };
    const ends = [RATE + 7, 2 * RATE + 1000, 2 * RATE + 1001, 4 * RATE - 333, frames];
    const song = await runningSong(stems, ends);
    await publish(song, 2);
    const live = await openLive(livePath(song.hash, 'vocals'));
    await new Promise((r) => setTimeout(r, 200));
    await publish(song, ends.length);
    await finish(song);
    expect((await live.ended).complete).toBe(true);
    const decoded = await decodeMp3(live.bytes());
    const shift = alignment(decoded, sine);
    const local = (at: number): number => {
      const from = Math.max(0, at - MP3_FRAME);
      const to = Math.min(frames, at + MP3_FRAME);
      return sdr([sine[0].subarray(from, to), sine[1].subarray(from, to)], [decoded[0].subarray(shift + from, shift + to), decoded[1].subarray(shift + from, shift + to)]).db;
    };
    const atBoundaries = ends.slice(0, -1).map(local);
    const elsewhere = [0.5, 1.5, 2.6, 3.3, 4.5, 5.2].map((s) => local(Math.round(s * RATE)));
    const worstElsewhere = Math.min(...elsewhere);
    // The largest jump between neighbouring samples: a click would be far above the sine's own slope (2π·441/44100 × 0.5 ≈ 0.031).
    let jump = 0;
    for (let i = shift + 1; i < decoded[0].length - MP3_FRAME; i++) jump = Math.max(jump, Math.abs(decoded[0][i]! - decoded[0][i - 1]!));
    process.stdout.write(`[live] sine: SDR around boundaries ${atBoundaries.map((d) => d.toFixed(1)).join(', ')} dB; elsewhere ≥ ${worstElsewhere.toFixed(1)} dB; largest step ${jump.toFixed(4)}\n`);
    for (const db of atBoundaries) {
      expect(db).toBeGreaterThanOrEqual(25);
      expect(db).toBeGreaterThanOrEqual(worstElsewhere - 6);
    }
    expect(jump).toBeLessThan(0.05);
  }, 60_000);

  it('a worker killed mid-song: the retried run republishes the same pieces and the stream continues with identical audio', async () => {
    const frames = Math.round(12 * RATE);
    const song = await runningSong(tonal(frames), endsOf(frames, 3 * RATE));
    await publish(song, 2);
    const live = await openLive(livePath(song.hash, 'vocals'));
    await waitFor(async () => (await decodeMp3(live.bytes()))[0].length >= 5 * RATE, { timeoutMs: 10_000, what: 'two pieces' });
    const { queue } = under.rest.deps;
    // The first run dies; the reaper's fail hands the job back to the queue; a second worker runs it from the start.
    expect(await queue.fail(song.worker.id, song.hash, 'worker lost', { retryable: true, maxAttempts: 3 })).toBe('retry');
    await new Promise((r) => setTimeout(r, 300));
    expect(live.isEnded()).toBe(false);
    const second = new TestWorker(queue);
    await second.claim(song.hash);
    await publish(song, song.ends.length, { from: 0, worker: second });
    await finish(song, second);
    expect((await live.ended).complete).toBe(true);
    const c = compare(await decodeMp3(live.bytes()), song.stems.vocals);
    process.stdout.write(`[live] across a retried run: length ${c.length} vs ${frames}, SDR ${c.db.toFixed(1)} dB\n`);
    expect(c.db).toBeGreaterThanOrEqual(25);
    expect(Math.abs(c.length - frames)).toBeLessThanOrEqual(MP3_FRAME);
  }, 60_000);

  it('a failed job ends the stream: the connection closes before the body\'s end, after the audio that was final', async () => {
    const frames = 9 * RATE;
    const song = await runningSong(tonal(frames), endsOf(frames, 3 * RATE));
    await publish(song, 1);
    const live = await openLive(livePath(song.hash, 'vocals'));
    await waitFor(async () => (await decodeMp3(live.bytes()))[0].length >= 2 * RATE, { timeoutMs: 10_000, what: 'the first piece' });
    await song.worker.fail(song.hash, 'the model crashed');
    const started = Date.now();
    expect((await live.ended).complete).toBe(false);
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await decodeMp3(live.bytes()))[0].length).toBeGreaterThanOrEqual(2 * RATE);
    // And a new request for the failed job's stream is a 404 saying so.
    const again = await request(under.rest.app).get(livePath(song.hash, 'vocals')).set(ALICE);
    expect(again.status).toBe(404);
    expect(again.body).toMatchObject({ error: 'job_failed', detail: expect.stringContaining('the model crashed') });
  }, 60_000);

  it('a song deleted mid-stream ends the stream the same way', async () => {
    const frames = 9 * RATE;
    const song = await runningSong(tonal(frames), endsOf(frames, 3 * RATE));
    await publish(song, 1);
    const live = await openLive(livePath(song.hash, 'vocals'));
    await waitFor(async () => live.bytes().length > 10_000, { timeoutMs: 10_000, what: 'the first piece' });
    expect((await request(under.rest.app).delete(`/apiv1/jobs/${song.hash}`).set(ALICE)).status).toBe(200);
    expect((await live.ended).complete).toBe(false);
  }, 30_000);

  it('a client that never reads holds the stream where its socket is full: no more pieces are read until it reads, then the song arrives whole', async () => {
    const frames = 40 * RATE;
    // Noise on top of the tones: LAME's bitrate goes up, so the socket's buffers fill sooner.
    let seed = 7;
    const noise = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.4;
    const stems = { ...tonal(frames), vocals: stereo(frames, (ch, t) => chord([440, 554], 0.3, 3)(ch, t) + noise()) };
    const song = await runningSong(stems, endsOf(frames, Math.round(5.85 * RATE)));
    await publish(song, song.ends.length);
    const before = pieceBytesRead;
    const live = await openLive(livePath(song.hash, 'vocals'), ALICE, { unix: true });
    live.pause();
    // Reading stops once the socket is full: the count settles well short of the song.
    let last = -1;
    await waitFor(async () => {
      const now = pieceBytesRead;
      const settled = now === last && now > before;
      last = now;
      return settled;
    }, { timeoutMs: 20_000, intervalMs: 1500, what: 'the stream to stop reading pieces' });
    const stemBytes = frames * 8;
    const readWhilePaused = pieceBytesRead - before;
    process.stdout.write(`[live] never-reading client: the stream read ${(readWhilePaused / 2 ** 20).toFixed(1)} MiB of the stem's ${(stemBytes / 2 ** 20).toFixed(1)} MiB in the pieces (${((100 * readWhilePaused) / stemBytes).toFixed(0)} %); client holds ${live.bytes().length} B\n`);
    expect(readWhilePaused).toBeLessThan(stemBytes / 2);
    expect(live.isEnded()).toBe(false);
    // It reads again: the rest follows, and the stream ends with the whole song.
    live.resume();
    await finish(song);
    expect((await live.ended).complete).toBe(true);
    expect(pieceBytesRead - before).toBe(stemBytes);
    const c = compare(await decodeMp3(live.bytes()), song.stems.vocals);
    expect(Math.abs(c.length - frames)).toBeLessThanOrEqual(MP3_FRAME);
  }, 90_000);

  it('a client that goes away stops the stream: no more pieces are read, and its slot is free again', async () => {
    const frames = 30 * RATE;
    const song = await runningSong(tonal(frames), endsOf(frames, 3 * RATE));
    await publish(song, 1);
    const streams = await Promise.all(Array.from({ length: 4 }, () => openLive(livePath(song.hash, 'vocals'))));
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200, 200]);
    const refused = await request(under.rest.app).get(livePath(song.hash, 'vocals')).set(ALICE);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: 'too_many_streams', detail: expect.stringMatching(/at most 4 live audio streams .* per API key \(STREAMS_PER_CLIENT\)/) });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    await waitFor(async () => streams.every((s) => s.bytes().length > 0), { timeoutMs: 10_000, what: 'the first piece on every stream' });
    for (const s of streams) s.close();
    await Promise.all(streams.map((s) => s.ended));
    await new Promise((r) => setTimeout(r, 200));
    const before = pieceBytesRead;
    await publish(song, song.ends.length);
    await new Promise((r) => setTimeout(r, 1000));
    expect(pieceBytesRead).toBe(before);
    const again = await openLive(livePath(song.hash, 'vocals'));
    expect(again.status).toBe(200);
    again.close();
  }, 60_000);
});

/** The song's model stems stored as 24-bit FLAC, as a worker stores a `format: flac` run. */
async function storeFlacStems(song: Song): Promise<void> {
  for (const t of TRACKS) {
    const enc = await createStemEncoder('flac', RATE, 2);
    enc.encode(song.stems[t]);
    await under.rest.deps.store.putStem(song.hash, t, enc.finish(), 'flac');
  }
}

describe('live stream of a done job', () => {
  it('a song stored as FLAC only: the stem encoded to MP3 as it streams, gapless (its length is known)', async () => {
    const frames = Math.round(6.3 * RATE);
    const song = await runningSong(tonal(frames), endsOf(frames, 3 * RATE), { format: 'flac' });
    await storeFlacStems(song);
    await finish(song);
    const live = await openLive(livePath(song.hash, 'drums'));
    expect(live.status).toBe(200);
    expect((await live.ended).complete).toBe(true);
    const c = compare(await decodeMp3(live.bytes()), song.stems.drums);
    process.stdout.write(`[live] done, FLAC only: offset ${c.shift}, length ${c.length} vs ${frames}, SDR ${c.db.toFixed(1)} dB\n`);
    expect(c.db).toBeGreaterThanOrEqual(25);
    expect(c.shift).toBe(0);
    expect(c.length).toBe(frames);
  });

  it('pieces that stop mid-song (their publication failed) and a job that finishes: the stream goes on from the stored stem where it was, to the end', async () => {
    const frames = Math.round(12.5 * RATE);
    const song = await runningSong(tonal(frames), endsOf(frames, 3 * RATE), { format: 'flac' });
    await publish(song, 2);
    const live = await openLive(livePath(song.hash, 'vocals'));
    await waitFor(async () => (await decodeMp3(live.bytes()))[0].length >= 5 * RATE, { timeoutMs: 10_000, what: 'two pieces' });
    await storeFlacStems(song);
    await finish(song);
    expect((await live.ended).complete).toBe(true);
    const c = compare(await decodeMp3(live.bytes()), song.stems.vocals);
    process.stdout.write(`[live] pieces then the stored stem: offset ${c.shift}, length ${c.length} vs ${frames}, SDR ${c.db.toFixed(1)} dB\n`);
    expect(c.db).toBeGreaterThanOrEqual(25);
    expect(Math.abs(c.length - frames)).toBeLessThanOrEqual(MP3_FRAME);
  }, 30_000);

  it('serves the stored MP3 with its length', async () => {
    const frames = 3 * RATE;
    const song = await runningSong(tonal(frames), endsOf(frames, 3 * RATE));
    const stored = randomBytes(5000);
    for (const t of TRACKS) await under.rest.deps.store.putStem(song.hash, t, stored);
    await finish(song);
    const res = await request(under.rest.app).get(livePath(song.hash, 'bass')).set(ALICE).buffer(true).parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('audio/mpeg');
    expect(res.headers['content-length']).toBe(String(stored.length));
    expect(Buffer.compare(res.body as Buffer, stored)).toBe(0);
  });
});

describe('tenancy and bad requests', () => {
  it("another tenant's song is a 404 on the live stream and the pieces, like a song nobody submitted", async () => {
    const frames = 3 * RATE;
    const song = await runningSong(tonal(frames), endsOf(frames, 2 * RATE));
    await publish(song, 1);
    const unknown = randomBytes(28).toString('hex');
    for (const url of [livePath(song.hash, 'vocals'), `/apiv1/jobs/${song.hash}/pieces/0`]) {
      const bob = await request(under.rest.app).get(url).set(BOB);
      const nobody = await request(under.rest.app).get(url.replace(song.hash, unknown)).set(BOB);
      expect(bob.status).toBe(404);
      expect(bob.body.error).toBe('not_found');
      expect(bob.body.detail).toBe(nobody.body.detail.replace(unknown, song.hash));
    }
    song.worker.fail(song.hash, 'done with the test').catch(() => undefined);
  });

  it('pieces: the raw piece (octet-stream, its length, immutable), 404 not_ready past the published ones, 400 for a bad seq', async () => {
    const frames = 5 * RATE;
    const song = await runningSong(tonal(frames), endsOf(frames, 2 * RATE), { knownTotal: true });
    await publish(song, 2);
    const raw = (r: request.Test): request.Test =>
      r.buffer(true).parse((res, cb) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => cb(null, Buffer.concat(chunks)));
      });
    const piece = await raw(request(under.rest.app).get(`/apiv1/jobs/${song.hash}/pieces/1`).set(ALICE));
    expect(piece.status).toBe(200);
    expect(piece.headers['content-type']).toBe('application/octet-stream');
    expect(piece.headers['content-length']).toBe(String(2 * RATE * 32));
    expect(piece.headers['cache-control']).toMatch(/immutable/);
    expect(Buffer.compare(piece.body as Buffer, Buffer.from(pieceBytes(song, 1)))).toBe(0);

    const view = await request(under.rest.app).get(`/apiv1/jobs/${song.hash}`).set(ALICE);
    expect(view.body).toMatchObject({
      readySec: 4,
      durationSec: 5,
      live: {
        sampleRate: RATE,
        stems: ['drums', 'bass', 'other', 'vocals'],
        pieceEnds: [2 * RATE, 4 * RATE],
        pieceUrl: `/apiv1/jobs/${song.hash}/pieces/`,
        streams: { vocals: livePath(song.hash, 'vocals'), drums: livePath(song.hash, 'drums') },
      },
    });

    const later = await request(under.rest.app).get(`/apiv1/jobs/${song.hash}/pieces/2`).set(ALICE);
    expect(later.status).toBe(404);
    expect(later.body.error).toBe('not_ready');
    for (const bad of ['x', '-1', '123456', '1.5']) {
      const res = await request(under.rest.app).get(`/apiv1/jobs/${song.hash}/pieces/${bad}`).set(ALICE);
      expect(res.status, bad).toBe(400);
      expect(res.body.error).toBe('bad_seq');
    }
    // The lab's stem routes still answer not_ready while the job runs.
    const lab = await request(under.rest.app).get(`/apiv1/track/${song.hash}/vocals`).set(ALICE);
    expect(lab.status).toBe(404);
    expect(lab.body.error).toBe('not_ready');
    await publish(song, 3);
    await finish(song);
    const done = await request(under.rest.app).get(`/apiv1/jobs/${song.hash}`).set(ALICE);
    expect(done.body).toMatchObject({ state: 'done', readySec: 5, durationSec: 5, live: null });
  });

  it('the live route takes <stem>.mp3 of a stem the job makes: 400 for another name, 404 for a stem it does not make', async () => {
    const frames = 2 * RATE;
    const song = await runningSong(tonal(frames), endsOf(frames, RATE));
    for (const bad of ['vocals.wav', 'vocals', 'voice.mp3']) {
      const res = await request(under.rest.app).get(`/apiv1/jobs/${song.hash}/live/${bad}`).set(ALICE);
      expect(res.status, bad).toBe(400);
      expect(res.body.error).toBe('bad_track');
    }
    const res = await request(under.rest.app).get(livePath(song.hash, 'instrumental')).set(ALICE);
    expect(res.status).toBe(404);
    expect(res.body.detail).toContain('has no instrumental stem');
  });
});

describe('the job events', () => {
  it('carry readySec, durationSec and live with every piece (one event per progress report)', async () => {
    const frames = 7 * RATE;
    const song = await runningSong(tonal(frames), endsOf(frames, 3 * RATE));
    const views: { state: string; readySec: number; durationSec: number | null; live: { pieceEnds: number[] } | null }[] = [];
    const req = http.get({ host: '127.0.0.1', port, path: `/apiv1/jobs/${song.hash}/events`, headers: ALICE, agent: false }, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let idx: number;
        while ((idx = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, idx).split('\n');
          buffer = buffer.slice(idx + 2);
          const data = block.find((l) => l.startsWith('data: '));
          if (block[0] === 'event: job' && data) views.push(JSON.parse(data.slice(6)));
        }
      });
    });
    req.on('error', () => undefined);
    try {
      await waitFor(async () => views.length > 0, { timeoutMs: 5000, what: 'the first event' });
      expect(views[0]).toMatchObject({ state: 'processing', readySec: 0, live: null });
      for (let n = 1; n <= song.ends.length; n++) {
        await publish(song, n);
        const want = song.ends[n - 1]! / RATE;
        await waitFor(async () => views.some((v) => v.readySec === want), { timeoutMs: 5000, what: `readySec ${want}` });
      }
      const withPieces = views.filter((v) => v.live !== null);
      expect(withPieces.map((v) => v.live!.pieceEnds.length)).toEqual([1, 2, 3]);
      expect(withPieces.map((v) => v.durationSec)).toEqual([null, null, 7]);
      await finish(song);
      await waitFor(async () => views.at(-1)!.state === 'done', { timeoutMs: 5000, what: 'done' });
      expect(views.at(-1)).toMatchObject({ readySec: 7, durationSec: 7, live: null });
    } finally {
      req.destroy();
    }
  });
});

describe('a stream on which nothing moves', () => {
  it('ends (abruptly, like a failed job) after STREAM_MAX_LIFETIME_SEC without a piece, a job event or bytes taken, and frees its slot', async () => {
    const stalling = await restUnderTest('live-stall', { STREAM_MAX_LIFETIME_SEC: '2', STREAMS_PER_CLIENT: '1' });
    const srv = http.createServer(stalling.rest.app);
    try {
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const { redis, keys } = stalling.rest.deps.queue;
      await waitFor(async () => ((await redis.pubsub('NUMSUB', keys.events)) as [string, number])[1] > 0, { timeoutMs: 10_000, what: 'the job-event subscription' });
      const hash = randomBytes(28).toString('hex');
      await stalling.rest.deps.queue.submit({ hash, sizeBytes: 1 });
      const started = Date.now();
      const ended = await new Promise<{ complete: boolean; status: number }>((resolve, reject) => {
        const where = { host: '127.0.0.1', port: (srv.address() as AddressInfo).port, path: livePath(hash, 'vocals'), agent: false };
        http.get(where, (res) => {
          res.resume();
          res.on('error', () => undefined);
          res.once('close', () => resolve({ complete: res.complete, status: res.statusCode! }));
        }).on('error', reject);
      });
      const ms = Date.now() - started;
      expect(ended).toEqual({ complete: false, status: 200 });
      // The lifetime is drawn in [0.8, 1] × 2 s.
      expect(ms).toBeGreaterThanOrEqual(1500);
      expect(ms).toBeLessThan(5000);
      // STREAMS_PER_CLIENT=1: a new stream is admitted, so the ended one gave its slot back.
      const status = await new Promise<number>((resolve, reject) => {
        const where = { host: '127.0.0.1', port: (srv.address() as AddressInfo).port, path: livePath(hash, 'vocals'), agent: false };
        const req = http.get(where, (res) => {
          resolve(res.statusCode!);
          req.destroy();
        });
        req.on('error', () => undefined);
        setTimeout(() => reject(new Error('no answer')), 5000).unref();
      });
      expect(status).toBe(200);
    } finally {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
      await stalling.close();
    }
  }, 30_000);
});
