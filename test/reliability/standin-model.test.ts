import { describe, expect, it } from 'vitest';
import { TRACKS } from '@msaas/common';
import { createEngine, decodeMp3 } from '../../worker/src/separation/index.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { clip } from './support.ts';

/**
 * The stand-in the other reliability tests run the worker with: it loads through the real engine
 * (which binds inputs and outputs by shape) and the full pipeline turns a clip into four stems of
 * mix / 4.
 */
describe('stand-in HTDemucs graph', () => {
  it('loads in the real engine and separates a clip into four stems of a quarter of the mix', async () => {
    const engine = await createEngine({ modelPath: standinModelPath() });
    try {
      const mp3 = await clip(4);
      const { stems } = await engine.separateAudio(mp3);
      const mix = (await decodeMp3(mp3)).channels[0];
      const rms = (a: Float32Array, from: number, to: number): number => {
        let s = 0;
        for (let i = from; i < to; i++) s += a[i]! * a[i]!;
        return Math.sqrt(s / (to - from));
      };
      for (const t of TRACKS) {
        const stem = (await decodeMp3(stems[t])).channels[0];
        expect(Math.abs(stem.length - mix.length)).toBeLessThan(2048);
        const ratio = rms(stem, 4096, mix.length - 4096) / rms(mix, 4096, mix.length - 4096);
        expect(ratio).toBeGreaterThan(0.23);
        expect(ratio).toBeLessThan(0.27);
      }
    } finally {
      await engine.close();
    }
  }, 60_000);
});
