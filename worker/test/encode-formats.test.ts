import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FLACDecoder } from '@wasm-audio-decoders/flac';
import { createFlacStreamEncoder } from '@msaas/common/audio-encode/flac';
import { createWavStreamEncoder, readWav24 } from '@msaas/common/audio-encode/wav';
import { toPcm24 } from '@msaas/common/audio-encode/pcm24';
import { sdr } from './helpers/audio.ts';
import { STEMS, TRACKS, type Track } from '@msaas/common';
import { createEngine } from '../src/separation/index.ts';
import { synthesizeMp3 } from '../fixtures/synth.ts';
import { standinModelPath } from '../../test/helpers/standin-model.ts';

/** Stereo test signal: two tones, a chirp, noise, silence and a full-scale clip, so every subframe type occurs. */
function signal(n: number, seed = 7): [Float32Array, Float32Array] {
  let s = seed;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const l = new Float32Array(n);
  const r = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / 44100;
    const quiet = i > n * 0.4 && i < n * 0.5; // digital silence (constant subframes)
    const loud = i > n * 0.8 && i < n * 0.82; // beyond full scale: clipped to the 24-bit range
    l[i] = quiet ? 0 : 0.4 * Math.sin(2 * Math.PI * 440 * t) + 0.1 * rnd() + (loud ? 1.5 : 0);
    r[i] = quiet ? 0 : 0.3 * Math.sin(2 * Math.PI * (200 + 800 * t) * t) + 0.05 * rnd() - (loud ? 1.5 : 0);
  }
  return [l, r];
}

/** Feeds an encoder in uneven pieces, as the engine does (one chunk of each stem at a time). */
function feed(enc: { encode(ch: readonly Float32Array[]): void }, [l, r]: [Float32Array, Float32Array]): void {
  const steps = [1, 4095, 4097, 333, 100_000];
  for (let i = 0, k = 0; i < l.length; k++) {
    const n = Math.min(steps[k % steps.length]!, l.length - i);
    enc.encode([l.subarray(i, i + n), r.subarray(i, i + n)]);
    i += n;
  }
}

async function decodeFlac(bytes: Uint8Array): Promise<{ channels: Float32Array[]; sampleRate: number; bitDepth: number; errors: number }> {
  const decoder = new FLACDecoder();
  await decoder.ready;
  try {
    const out = await decoder.decodeFile(bytes);
    return { channels: out.channelData, sampleRate: out.sampleRate, bitDepth: out.bitDepth, errors: out.errors.length };
  } finally {
    decoder.free();
  }
}

/** The decoder's floats are its integers divided by 2^23 − 1 (measured: 8,388,607 → 1.0, −8,388,608 → −1.0000001). */
const DECODER_SCALE = 8_388_607;
const as24 = (x: Float32Array): Int32Array => Int32Array.from(x, (v) => Math.round(v * DECODER_SCALE));
/** The decoded floats on our scale (integer / 2^23), for comparing with the float input. */
const ourScale = (x: Float32Array): Float32Array => Float32Array.from(x, (v) => (v * DECODER_SCALE) / 8_388_608);

describe('FLAC encoder (24-bit)', () => {
  it('writes a stream a real decoder (libFLAC in wasm) decodes bit-exactly to the 24-bit samples', async () => {
    const n = 44100 * 3 + 1234; // a partial last block
    const [l, r] = signal(n);
    const enc = createFlacStreamEncoder(44100, 2);
    feed(enc, [l, r]);
    const flac = enc.finish();
    expect(new TextDecoder().decode(flac.subarray(0, 4))).toBe('fLaC');
    const out = await decodeFlac(flac);
    expect(out.errors).toBe(0);
    expect(out.sampleRate).toBe(44100);
    expect(out.bitDepth).toBe(24);
    expect(out.channels).toHaveLength(2);
    expect(out.channels[0]!.length).toBe(n);
    for (const [c, src] of [l, r].entries()) {
      const want = Int32Array.from(src, toPcm24);
      expect(as24(out.channels[c]!)).toEqual(want);
    }
    // smaller than 24-bit PCM: the predictors and Rice codes do work
    expect(flac.length).toBeLessThan(n * 6 * 0.9);
  });

  it('agrees with the float input at far above 90 dB where it is not clipped', async () => {
    const n = 44100 * 2;
    const [l, r] = signal(n, 3).map((ch) => ch.map((v) => Math.max(-0.99, Math.min(0.99, v)))) as [Float32Array, Float32Array];
    const enc = createFlacStreamEncoder(44100, 2);
    feed(enc, [l, r]);
    const out = await decodeFlac(enc.finish());
    expect(sdr([l, r], out.channels.map(ourScale)).db).toBeGreaterThan(120);
  });

  it('codes short, silent and mono streams', async () => {
    for (const n of [1, 5, 4096, 4097]) {
      const enc = createFlacStreamEncoder(44100, 2);
      enc.encode([new Float32Array(n), new Float32Array(n).fill(0.25)]);
      const out = await decodeFlac(enc.finish());
      expect(out.channels[0]!.length).toBe(n);
      expect(as24(out.channels[1]!)).toEqual(new Int32Array(n).fill(toPcm24(0.25)));
    }
    const mono = createFlacStreamEncoder(48000, 1);
    const x = signal(10_000)[0];
    mono.encode([x]);
    const out = await decodeFlac(mono.finish());
    expect(out.sampleRate).toBe(48000);
    expect(as24(out.channels[0]!)).toEqual(Int32Array.from(x, toPcm24));
  });
});

describe('WAV writer (24-bit)', () => {
  it('writes a RIFF/WAVE PCM file whose samples are the input rounded to 24 bits', () => {
    const n = 50_001;
    const [l, r] = signal(n);
    const enc = createWavStreamEncoder(44100, 2);
    feed(enc, [l, r]);
    const wav = enc.finish();
    expect(wav.length).toBe(44 + n * 6);
    const view = new DataView(wav.buffer, wav.byteOffset);
    expect(new TextDecoder().decode(wav.subarray(0, 4))).toBe('RIFF');
    expect(view.getUint32(4, true)).toBe(wav.length - 8);
    expect(view.getUint16(20, true)).toBe(1);
    expect(view.getUint16(34, true)).toBe(24);
    const back = readWav24(wav);
    expect(back.sampleRate).toBe(44100);
    expect(back.channels[0]).toEqual(Int32Array.from(l, toPcm24));
    expect(back.channels[1]).toEqual(Int32Array.from(r, toPcm24));
  });
});

describe('engine output in any format (stand-in model)', () => {
  it('FLAC stems decode to the same job\'s float stems at ≥ 90 dB, and instrumental is drums + bass + other at ≥ 60 dB', async () => {
    const engine = await createEngine({ modelPath: standinModelPath(), threads: 1 });
    try {
      const mp3 = await synthesizeMp3({ seconds: 5, seed: 4 });
      const floats: Record<Track, Float32Array[][]> = { drums: [], bass: [], other: [], vocals: [] };
      const { files } = await engine.separateToFiles(mp3, { formats: ['flac', 'wav'], stems: STEMS }, {
        onSamples: (t, l, r) => floats[t].push([l.slice(), r.slice()]),
      });
      expect(files.map((f) => `${f.stem}.${f.format}`)).toEqual(STEMS.flatMap((s) => [`${s}.flac`, `${s}.wav`]));
      const joined = (t: Track): Float32Array[] => [0, 1].map((c) => {
        const parts = floats[t].map((p) => p[c]!);
        const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) (out.set(p, o), (o += p.length));
        return out;
      });
      const float = Object.fromEntries(TRACKS.map((t) => [t, joined(t)])) as Record<Track, Float32Array[]>;
      for (const f of files.filter((x) => x.format === 'flac')) {
        expect(new TextDecoder().decode(f.bytes.subarray(0, 4))).toBe('fLaC');
        const out = await decodeFlac(f.bytes);
        expect(out.bitDepth).toBe(24);
        const ref = f.stem === 'instrumental'
          ? [0, 1].map((c) => Float32Array.from(float.drums[c]!, (v, i) => v + float.bass[c]![i]! + float.other[c]![i]!))
          : float[f.stem as Track];
        const db = sdr(ref, out.channels.map(ourScale)).db;
        expect(db, f.stem).toBeGreaterThan(f.stem === 'instrumental' ? 60 : 90);
        // the WAV copy holds the same 24-bit samples
        const wav = readWav24(files.find((x) => x.stem === f.stem && x.format === 'wav')!.bytes);
        const flac24 = as24(out.channels[0]!);
        let differing = 0;
        for (let i = 0; i < flac24.length; i++) if (flac24[i] !== wav.channels[0]![i]) differing++;
        expect(wav.channels[0]!.length).toBe(flac24.length);
        expect(differing).toBe(0);
      }
    } finally {
      await engine.close();
    }
  }, 120_000);
});

describe('separate CLI: --format and --stems', () => {
  const ROOT = path.resolve(import.meta.dirname, '../..');
  const run = (args: string[]) =>
    spawnSync(path.join(ROOT, 'node_modules/.bin/tsx'), [path.join(ROOT, 'worker/src/cli.ts'), ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, MODEL_PATH: standinModelPath() },
    });

  it('writes <name>-<stem>.flac for the stems asked for, and refuses an unknown format or stem as usage errors', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'msaas-cli-formats-'));
    try {
      const input = path.join(dir, 'song.mp3');
      writeFileSync(input, await synthesizeMp3({ seconds: 2, seed: 5 }));
      const out = path.join(dir, 'out');
      const r = run([input, '-o', out, '--format', 'flac', '--stems', 'vocals,instrumental', '--quiet', '--original-graph']);
      expect(r.stderr).not.toMatch(/error/);
      expect(r.status).toBe(0);
      expect(readdirSync(out).sort()).toEqual(['song-instrumental.flac', 'song-vocals.flac']);
      for (const f of readdirSync(out)) {
        const decoded = await decodeFlac(new Uint8Array(readFileSync(path.join(out, f))));
        expect(decoded.bitDepth).toBe(24);
        expect(decoded.channels[0]!.length).toBeGreaterThan(44100 * 1.9);
      }
      for (const bad of [['--format', 'ogg'], ['--stems', 'vocals,guitar']]) {
        const u = run([input, '-o', out, ...bad]);
        expect(u.status).toBe(1);
        expect(u.stderr).toMatch(/^error: invalid --(format|stems)/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
