import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  createEngine, decodeMp3, scanMp3, AudioInputError, ModelFileError, TRACKS, type DetailedEngine,
} from '../src/separation/index.ts';
import { synthesizeMp3 } from '../fixtures/synth.ts';
import { bestLag, countNonFinite, rms } from './helpers/audio.ts';

describe('createEngine', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'msaas-engine-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the path when the model file is missing', async () => {
    const missing = path.join(dir, 'nope.onnx');
    const err = await createEngine({ modelPath: missing }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as Error).message).toContain(missing);
    expect((err as Error).message).toMatch(/does not exist/);
  });

  it('names the path when the file is not an ONNX model', async () => {
    const junk = path.join(dir, 'junk.onnx');
    writeFileSync(junk, 'this is not a model');
    const err = await createEngine({ modelPath: junk }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as Error).message).toContain(junk);
    expect((err as Error).message).toMatch(/not a loadable ONNX model/);
  });
});

describe('Engine.separateAudio', () => {
  let engine: DetailedEngine;
  let song: Uint8Array;
  beforeAll(async () => {
    engine = await createEngine({ threads: 2 });
    song = await synthesizeMp3({ seconds: 3, seed: 4 }); // one chunk
  }, 120_000);
  afterAll(async () => {
    await engine?.close();
  });

  it('turns an MP3 into four stereo MP3 stems of the same length, reporting progress', async () => {
    const progress: number[] = [];
    const { stems, stats } = await engine.separateAudio(song, { onProgress: (f) => progress.push(f) });
    expect(Object.keys(stems).sort()).toEqual([...TRACKS].sort());
    const mix = (await decodeMp3(song)).channels;
    const sum = [new Float32Array(mix[0].length), new Float32Array(mix[1].length)];
    for (const t of TRACKS) {
      const scan = scanMp3(stems[t]);
      expect(scan.sampleRate).toBe(44100);
      expect(scan.channels).toBe(2);
      const d = await decodeMp3(stems[t]);
      expect(d.channels[0].length).toBe(mix[0].length); // gapless: no encoder delay or padding
      expect(countNonFinite(d.channels)).toBe(0);
      for (let c = 0; c < 2; c++) for (let i = 0; i < mix[c].length; i++) sum[c][i] += d.channels[c][i];
    }
    // ... and in place: the decoded stems add up to the mix best at lag 0
    for (let c = 0; c < 2; c++) expect(bestLag(mix[c], sum[c], 2400)).toBe(0);
    // drums and bass are there in the synthetic mix
    expect(rms((await decodeMp3(stems.drums)).channels[0])).toBeGreaterThan(0.01);
    expect(rms((await decodeMp3(stems.bass)).channels[0])).toBeGreaterThan(0.005);
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(1);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]);
    expect(stats.chunks).toBe(1);
    expect(stats.runMs).toBeGreaterThan(0);
  });

  it('rejects bad audio with AudioInputError before running the model', async () => {
    const err = await engine.separateAudio(new Uint8Array(4000).fill(7)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AudioInputError);
    expect((err as AudioInputError).code).toBe('unsupported_format');
  });

  it('stops when its signal is aborted, and stays usable', async () => {
    const ac = new AbortController();
    ac.abort(new Error('job cancelled'));
    await expect(engine.separateAudio(song, { signal: ac.signal })).rejects.toThrow('job cancelled');
    // Aborted mid-way (after the first chunk was prepared): its buffers must come back.
    const mid = new AbortController();
    const onProgress = (): void => mid.abort(new Error('cancelled mid-way'));
    await expect(engine.separateAudio(song, { signal: mid.signal, onProgress })).rejects.toThrow('cancelled mid-way');
    const twoChunks = await synthesizeMp3({ seconds: 6.5, seed: 6 });
    const { stems, stats } = await engine.separateAudio(twoChunks);
    expect(stats.chunks).toBe(2);
    expect(stems.vocals.length).toBeGreaterThan(1000);
  }, 120_000);
});
