import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_MP3, readWav24, wavFrames, wavHeader } from '@msaas/common/audio-encode/index';
import { MixThreads, type MixSpec } from '../src/mix-threads.ts';

const RATE = 44_100;

/** A stored stem in the stems' WAV layout (24-bit stereo), `seconds` long, a sine of `hz`. */
function wavStem(seconds: number, hz: number): Uint8Array {
  const n = seconds * RATE;
  const l = new Float32Array(n);
  const r = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    l[i] = 0.25 * Math.sin((2 * Math.PI * hz * i) / RATE);
    r[i] = 0.25 * Math.cos((2 * Math.PI * hz * i) / RATE);
  }
  const body = wavFrames([l, r]);
  const out = new Uint8Array(44 + body.length);
  out.set(wavHeader(RATE, 2, n));
  out.set(body, 44);
  return out;
}

/** A store stream's shape: the bytes in 16 KiB chunks. */
const streamOf = (bytes: Uint8Array): Readable => Readable.from((function* () {
  for (let i = 0; i < bytes.length; i += 16_384) yield Buffer.from(bytes.subarray(i, i + 16_384));
})());

const threads = new MixThreads(2);
afterAll(() => threads.close());

async function collect(spec: MixSpec, signal = new AbortController().signal): Promise<{ finished: boolean; bytes: Uint8Array }> {
  const parts: Uint8Array[] = [];
  const finished = await threads.render(spec, async (b) => (parts.push(...b), true), signal);
  return { finished, bytes: Buffer.concat(parts) };
}

describe('mix threads: the mix CPU off the request thread', () => {
  it('a WAV mix of two stems with gains is their weighted sum, within one 24-bit step', async () => {
    const a = wavStem(3, 440);
    const b = wavStem(3, 660);
    const { finished, bytes } = await collect({ ext: 'wav', format: 'wav', vbr: DEFAULT_MP3, total: 3 * RATE, sources: [{ stream: streamOf(a), gain: 0.5 }, { stream: streamOf(b), gain: 1.5 }] });
    expect(finished).toBe(true);
    const [ma, mb, mix] = [readWav24(a), readWav24(b), readWav24(bytes)];
    expect(mix.channels[0]!.length).toBe(3 * RATE);
    let worst = 0;
    for (let c = 0; c < 2; c++) {
      for (let i = 0; i < 3 * RATE; i++) worst = Math.max(worst, Math.abs(mix.channels[c]![i]! - (0.5 * ma.channels[c]![i]! + 1.5 * mb.channels[c]![i]!)));
    }
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('many mixes at once on two threads all complete, and the request thread is never held more than 50 ms', async () => {
    const stem = wavStem(10, 330);
    let worstLag = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstLag = Math.max(worstLag, now - last - 5);
      last = now;
    }, 5);
    const results = await Promise.all(Array.from({ length: 6 }, () => collect({ ext: 'wav', format: 'mp3', vbr: DEFAULT_MP3, total: 10 * RATE, sources: [0, 1, 2, 3].map(() => ({ stream: streamOf(stem), gain: 0.25 })) })));
    clearInterval(timer);
    for (const r of results) {
      expect(r.finished).toBe(true);
      expect(r.bytes.length).toBeGreaterThan(50_000);
    }
    expect(worstLag).toBeLessThan(50);
  });

  it('a client that leaves stops the mix: render answers false and its store streams are destroyed', async () => {
    const stream = streamOf(wavStem(20, 440));
    const left = new AbortController();
    let writes = 0;
    const finished = await threads.render({ ext: 'wav', format: 'mp3', vbr: DEFAULT_MP3, total: 20 * RATE, sources: [{ stream, gain: 1 }] }, async () => {
      if (++writes === 3) left.abort();
      return true;
    }, left.signal);
    expect(finished).toBe(false);
    expect(writes).toBeLessThan(6);
    expect(stream.destroyed).toBe(true);
  });

  it('a stem the store cannot read fails the mix with its reason; the thread takes the next mix', async () => {
    const broken = new Readable({ read() { this.destroy(new Error('store went away (test)')); } });
    await expect(collect({ ext: 'wav', format: 'wav', vbr: DEFAULT_MP3, total: RATE, sources: [{ stream: broken, gain: 1 }] })).rejects.toThrow('store went away (test)');
    const again = await collect({ ext: 'wav', format: 'wav', vbr: DEFAULT_MP3, total: RATE, sources: [{ stream: streamOf(wavStem(1, 440)), gain: 1 }] });
    expect(again.finished).toBe(true);
  });

  it('a thread that dies fails its mixes (no request hangs) and the next mix gets a new thread', async () => {
    const own = new MixThreads(1);
    try {
      await own.warm();
      const parts: Uint8Array[] = [];
      const running = own.render({ ext: 'wav', format: 'mp3', vbr: DEFAULT_MP3, total: 20 * RATE, sources: [{ stream: streamOf(wavStem(20, 440)), gain: 1 }] }, async (b) => {
        parts.push(...b);
        await new Promise((r) => setTimeout(r, 20));
        return true;
      }, new AbortController().signal);
      await new Promise((r) => setTimeout(r, 200));
      // What an uncaught error or an out-of-memory abort of the thread looks like from here.
      await (own as unknown as { threads: { worker: { terminate(): Promise<number> } }[] }).threads[0]!.worker.terminate();
      await expect(running).rejects.toThrow(/mix thread: exited/);
      const next = await new Promise<boolean>((resolve, reject) => {
        own.render({ ext: 'wav', format: 'wav', vbr: DEFAULT_MP3, total: RATE, sources: [{ stream: streamOf(wavStem(1, 440)), gain: 1 }] }, async () => true, new AbortController().signal).then(resolve, reject);
      });
      expect(next).toBe(true);
    } finally {
      await own.close();
    }
  });
});
