import { describe, it, expect } from 'vitest';
import { synthesizeSong, synthesizeMp3 } from '../fixtures/synth.ts';
import { scanMp3 } from '../src/separation/index.ts';
import { rms, sameSamples, countNonFinite } from './helpers/audio.ts';

describe('synthesizeSong', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = synthesizeSong({ seconds: 1.5, seed: 7 });
    const b = synthesizeSong({ seconds: 1.5, seed: 7 });
    const c = synthesizeSong({ seconds: 1.5, seed: 8 });
    expect(sameSamples(a[0], b[0]) && sameSamples(a[1], b[1])).toBe(true);
    expect(sameSamples(a[0], c[0])).toBe(false);
  });

  it('makes finite stereo audio below full scale, with some stereo width', () => {
    const [l, r] = synthesizeSong({ seconds: 2 });
    expect(l.length).toBe(88200);
    expect(countNonFinite([l, r])).toBe(0);
    let peak = 0;
    for (const ch of [l, r]) for (const v of ch) peak = Math.max(peak, Math.abs(v));
    expect(peak).toBeLessThanOrEqual(0.9);
    expect(rms(l)).toBeGreaterThan(0.05);
    expect(sameSamples(l, r)).toBe(false);
  });

  it('makes mono at the requested rate', () => {
    const mono = synthesizeSong({ seconds: 1, sampleRate: 32000, stereo: false });
    expect(mono).toHaveLength(1);
    expect(mono[0].length).toBe(32000);
  });
});

describe('synthesizeMp3', () => {
  it('encodes at the requested rate and channel count', async () => {
    const mp3 = await synthesizeMp3({ seconds: 1, sampleRate: 48000, stereo: false });
    const scan = scanMp3(mp3);
    expect(scan.sampleRate).toBe(48000);
    expect(scan.channels).toBe(1);
  });
});
