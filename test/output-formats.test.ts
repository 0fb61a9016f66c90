import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLACDecoder } from '@wasm-audio-decoders/flac';
import { ApiError, STEMS, TRACKS, parseFrameHeader, songhash } from '@msaas/common';
import { readWav24 } from '@msaas/common/audio-encode/wav';
import { decodeMp3 } from '../worker/src/separation/index.ts';
import { sdr } from '../worker/fixtures/sdr.ts';
import { printLinesOnFailure, startStack, type Stack } from './helpers/stack.ts';
import { standinModelPath } from './helpers/standin-model.ts';
import { clip, outputObjects, report, s3Client, stemNames, variant, waitJob } from './reliability/support.ts';

/**
 * Output formats, instrumental, stem sets, the format-change re-run and the custom mix, through the
 * real services (rest + worker with the stand-in model: each stem is mix / 4) and the real store.
 */
let stack: Stack;
let song: Buffer;
const figures: Record<string, unknown> = {};
printLinesOnFailure(() => stack?.lines);

async function decodeFlac(bytes: Uint8Array): Promise<{ channels: Float32Array[]; bitDepth: number; errors: number }> {
  const decoder = new FLACDecoder();
  await decoder.ready;
  try {
    const out = await decoder.decodeFile(bytes);
    // libFLAC's floats are integer / (2^23 − 1); the stems were written as float × 2^23
    const channels = out.channelData.map((c) => Float32Array.from(c, (v) => (v * 8_388_607) / 8_388_608));
    return { channels, bitDepth: out.bitDepth, errors: out.errors.length };
  } finally {
    decoder.free();
  }
}

const wavFloats = (bytes: Uint8Array): Float32Array[] => readWav24(bytes).channels.map((c) => Float32Array.from(c, (v) => v / 8_388_608));

beforeAll(async () => {
  song = await clip(4);
  stack = await startStack({ contract: true, env: { MODEL_PATH: standinModelPath(), RATE_LIMIT_PER_MIN: '1000000', SUBMIT_RATE_LIMIT_PER_MIN: '1000000' } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  report('output-formats', figures);
}, 60_000);

describe('output formats and stems per job', () => {
  it('a lab request still stores exactly the four MP3 stems; asked again as FLAC with instrumental, a new run adds those files and keeps the MP3s', async () => {
    const { api } = stack;
    const first = await api.submit(song);
    expect(first).toMatchObject({ result: 'enqueued', reason: 'Song enqueued for separation' });
    const hash = first.hash;
    const done = await waitJob(api, hash, (j) => j.state === 'done', 60_000, 'lab job');
    expect(Object.keys(done.stems).sort()).toEqual([...TRACKS].sort());
    expect(done.formats).toEqual(['mp3']);
    expect((await outputObjects(s3Client(stack.env), hash)).map((o) => o.name)).toEqual(stemNames(hash));
    const mp3Before = (await api.stem(hash, 'vocals')).bytes;

    // The same song, now as FLAC with instrumental: a new run, and the answer says why.
    const again = await api.submit(song, { format: 'flac', stems: ['vocals', 'instrumental'] });
    expect(again.result).toBe('enqueued');
    expect(again.reason).toMatch(/^separated before as mp3; a new run makes the flac stems and instrumental/);
    const rerun = await waitJob(api, hash, (j) => j.state === 'done', 60_000, 'flac re-run');
    expect(rerun.formats).toEqual(['mp3', 'flac']);
    expect(Object.keys(rerun.stems).sort()).toEqual([...STEMS].sort());
    expect(rerun.stems.vocals).toBe(`/apiv1/track/${hash}/vocals.mp3`);
    expect(rerun.files.flac?.instrumental).toBe(`/apiv1/track/${hash}/instrumental.flac`);
    const names = (await outputObjects(s3Client(stack.env), hash)).map((o) => o.name);
    expect(names).toEqual(STEMS.flatMap((s) => [`${hash}-${s}.flac`, `${hash}-${s}.mp3`]).sort());

    // Asked once more: already there, no run.
    expect(await api.submit(song, { format: 'flac', stems: ['vocals', 'instrumental'] })).toMatchObject({ result: 'done', reason: 'Song already separated' });
    expect(await api.submit(song)).toMatchObject({ result: 'done' });

    // The MP3 stems are the same audio as before the re-run (the stand-in is deterministic).
    const mp3After = (await api.stem(hash, 'vocals')).bytes;
    const [a, b] = [await decodeMp3(mp3Before), await decodeMp3(mp3After)];
    expect(sdr(a.channels, b.channels).db).toBeGreaterThan(90);

    // FLAC stems: fLaC, 24-bit, served as audio/flac with ranges; they agree with the MP3s' audio.
    const flac = await api.stem(hash, 'vocals', { format: 'flac' });
    expect(flac.contentType).toBe('audio/flac');
    expect(new TextDecoder().decode(flac.bytes.subarray(0, 4))).toBe('fLaC');
    const decoded = await decodeFlac(flac.bytes);
    expect(decoded.errors).toBe(0);
    expect(decoded.bitDepth).toBe(24);
    expect(Math.abs(decoded.channels[0]!.length - b.channels[0].length)).toBeLessThanOrEqual(1);
    const part = await api.stem(hash, 'vocals', { format: 'flac', range: { start: 0, end: 3 } });
    expect(part.contentRange).toBe(`bytes 0-3/${flac.bytes.length}`);
    expect(new TextDecoder().decode(part.bytes)).toBe('fLaC');

    // instrumental (summed from the float stems) = drums + bass + other, checked on the lossless copies
    const parts = await Promise.all(['drums', 'bass', 'other'].map(async (t) => (await decodeFlac((await api.stem(hash, t as 'drums', { format: 'flac' })).bytes)).channels));
    const inst = (await decodeFlac((await api.stem(hash, 'instrumental', { format: 'flac' })).bytes)).channels;
    const sum = [0, 1].map((c) => Float32Array.from(inst[c]!, (_, i) => parts[0]![c]![i]! + parts[1]![c]![i]! + parts[2]![c]![i]!));
    const instDb = sdr(sum, inst).db;
    expect(instDb).toBeGreaterThan(60);
    figures.instrumentalVsSumDb = Number(instDb.toFixed(1));

    // The zip carries one format's files.
    const zipFlac = await api.zip(hash, { format: 'flac' });
    const zipText = Buffer.from(zipFlac.bytes).toString('latin1');
    for (const s of STEMS) expect(zipText).toContain(`${s}.flac`);
    expect(zipText).not.toContain('.mp3');
    const zipMp3 = Buffer.from((await api.zip(hash)).bytes).toString('latin1');
    expect(zipMp3).toContain('vocals.mp3');
    expect(zipMp3).not.toContain('.flac');

    // The custom mix with (1,1,1,0) is the instrumental: exactly so as WAV, within MP3 tolerance as MP3.
    const mixWav = await api.mix(hash, { drums: 1, bass: 1, other: 1, vocals: 0 }, { format: 'wav' });
    expect(mixWav.contentType).toBe('audio/wav');
    const mixWavDb = sdr(inst, wavFloats(mixWav.bytes)).db;
    expect(mixWavDb).toBeGreaterThan(60);
    const mixMp3 = await api.mix(hash, { drums: 1, bass: 1, other: 1, vocals: 0 }, { format: 'mp3' });
    expect(mixMp3.contentType).toBe('audio/mpeg');
    const mixMp3Pcm = await decodeMp3(mixMp3.bytes);
    expect(Math.abs(mixMp3Pcm.channels[0].length - inst[0]!.length)).toBeLessThanOrEqual(1);
    const mixMp3Db = sdr(inst, mixMp3Pcm.channels).db;
    expect(mixMp3Db).toBeGreaterThan(15);
    const mixFlac = await api.mix(hash, { drums: 0.5, bass: 2, other: 0, vocals: 1 }, { format: 'flac' });
    const mf = (await decodeFlac(mixFlac.bytes)).channels;
    const vocalsFlac = (await decodeFlac((await api.stem(hash, 'vocals', { format: 'flac' })).bytes)).channels;
    const want = [0, 1].map((c) => Float32Array.from(mf[c]!, (_, i) => 0.5 * parts[0]![c]![i]! + 2 * parts[1]![c]![i]! + vocalsFlac[c]![i]!));
    expect(sdr(want, mf).db).toBeGreaterThan(60);
    Object.assign(figures, { mixWavVsInstrumentalDb: Number(mixWavDb.toFixed(1)), mixMp3VsInstrumentalDb: Number(mixMp3Db.toFixed(1)) });
  }, 180_000);

  it('mp3-320 stores CBR 320 kbps frames, and a stem set stores only those stems', async () => {
    const { api } = stack;
    const other = variant(song, 7);
    const hash = songhash(other);
    const res = await api.upload(other, { format: 'mp3-320', stems: ['vocals', 'instrumental'], filename: 'karaoke.mp3' });
    expect(res.result).toBe('enqueued');
    const done = await waitJob(api, hash, (j) => j.state === 'done', 60_000, 'mp3-320 job');
    expect(Object.keys(done.stems).sort()).toEqual(['instrumental', 'vocals']);
    expect(done.formats).toEqual(['mp3-320']);
    expect((await outputObjects(s3Client(stack.env), hash)).map((o) => o.name)).toEqual([`${hash}-instrumental.mp3`, `${hash}-vocals.mp3`]);
    const bytes = (await api.stem(hash, 'instrumental')).bytes;
    let pos = 0;
    const rates = new Set<number>();
    let frames = 0;
    for (let h = parseFrameHeader(bytes, pos); h; h = parseFrameHeader(bytes, pos)) {
      // the first frame is the Info tag; an MPEG-1 Layer III frame is 144000 × kbps / rate bytes (+1 padding)
      if (frames > 0) rates.add(Math.round((h.length * h.sampleRate) / 144_000));
      frames++;
      pos += h.length;
    }
    expect(pos).toBe(bytes.length);
    expect([...rates]).toEqual([320]);
    // asking mp3 (VBR) of a song stored as mp3-320 is served by it; a vocals + instrumental song
    // mixes from the stems it has (the karaoke pair): vocals muted leaves the instrumental
    expect(await api.submit(other, { stems: ['vocals'] })).toMatchObject({ result: 'done' });
    const karaoke = await api.mix(hash, { vocals: 0 });
    expect(karaoke.contentType).toBe('audio/mpeg');
    expect(karaoke.bytes.length).toBeGreaterThan(1000);
    // deleting the song removes every stem it stored, instrumental included
    expect(await api.deleteSong(hash)).toMatchObject({ removed: true, stems: 2 });
    expect(await outputObjects(s3Client(stack.env), hash)).toEqual([]);
  }, 120_000);

  it('wav stems are 24-bit RIFF served as audio/wav; bad format, stems and gains are 400s', async () => {
    const { api } = stack;
    const other = variant(song, 11);
    const hash = songhash(other);
    await api.submit(other, { format: 'wav' });
    await waitJob(api, hash, (j) => j.state === 'done', 60_000, 'wav job');
    const wav = await api.stem(hash, 'bass', { format: 'wav' });
    expect(wav.contentType).toBe('audio/wav');
    expect(readWav24(wav.bytes).channels[0]!.length).toBeGreaterThan(44100 * 3.9);
    // an mp3 of a song stored only as wav: 404 saying how to get it
    await expect(api.stem(hash, 'bass')).rejects.toMatchObject({ status: 404 });

    const refused = async (call: () => Promise<unknown>): Promise<ApiError> => (await call().then(() => null, (e: unknown) => e)) as ApiError;
    expect(await refused(() => api.submit(other, { format: 'ogg' as 'wav' }))).toMatchObject({ status: 400, error: 'bad_format' });
    expect(await refused(() => api.submit(other, { stems: ['guitar' as 'vocals'] }))).toMatchObject({ status: 400, error: 'bad_stems' });
    for (const gains of [{ drums: 3 }, { vocals: -1 }, { bass: Number.NaN }]) {
      expect(await refused(() => api.mix(hash, gains))).toMatchObject({ status: 400, error: 'bad_gain' });
    }
    expect(await refused(() => api.mix(hash, {}, { format: 'aac' as 'wav' }))).toMatchObject({ status: 400, error: 'bad_format' });
  }, 120_000);
});
