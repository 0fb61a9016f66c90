import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Resampler } from '../src/separation/resample.ts';
import { concat } from './helpers/audio.ts';

function sine(rate: number, hz: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * hz * i) / rate));
}

function runAll(r: Resampler, input: Float32Array, sizes: number[]): Float32Array {
  const parts: Float32Array[] = [];
  let pos = 0;
  let k = 0;
  while (pos < input.length) {
    const n = Math.min(sizes[k++ % sizes.length], input.length - pos);
    parts.push(r.push([input.subarray(pos, pos + n), input.subarray(pos, pos + n)])[0]);
    pos += n;
  }
  parts.push(r.flush()[0]);
  return concat(...parts);
}

describe('Resampler', () => {
  it.each([48000, 32000, 22050])('turns a %i Hz sine into the same sine at 44.1 kHz', (rate) => {
    const n = rate; // 1 s
    const out = runAll(new Resampler(rate, 44100, 2), sine(rate, 1000, n), [4096]);
    expect(out.length).toBe(Math.ceil((n * 44100) / rate));
    const want = sine(44100, 1000, out.length);
    let err = 0;
    for (let i = 200; i < out.length - 200; i++) err = Math.max(err, Math.abs(out[i] - want[i]));
    expect(err).toBeLessThan(2e-3);
  });

  it('gives the same output whatever the input chunking', () => {
    const input = sine(48000, 440, 20000).map((v, i) => v + 0.3 * Math.sin(i * 0.37));
    const ref = runAll(new Resampler(48000, 44100, 2), input, [input.length]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 8 }), (sizes) => {
        const out = runAll(new Resampler(48000, 44100, 2), input, sizes);
        expect(out.length).toBe(ref.length);
        for (let i = 0; i < out.length; i++) if (Math.abs(out[i] - ref[i]) > 1e-6) return false;
        return true;
      }),
      { numRuns: 25 },
    );
  });
});
