// The page's tests without a worker: a real rest app (in this process, real Redis under its own
// prefix, real s3rver) on a loopback port, songs submitted through the API with their names and
// "separated" through the queue's real transitions with stems the test encodes itself
// (test tones, silence), and headless Chromium.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { chromium, type Browser } from 'playwright-core';
import { TRACKS, songhash, type Track } from '@msaas/common';
import { TestWorker } from '../../../common/test/test-worker.ts';
import { encodeMp3 } from '@msaas/common/audio-encode/index';
import { synthesizeMp3 } from '../../../worker/fixtures/synth.ts';
import { restUnderTest, type RestUnderTest } from './rest-under-test.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];
export const RATE = 44100;

/** Installs Debian's chromium when it is missing (CI does this beforehand); null when usable. */
export function chromiumProblem(): string | null {
  if (existsSync(CHROMIUM)) return null;
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], { stdio: 'ignore', timeout: 600_000 });
  } catch {
    /* not root, or no network: reported below */
  }
  return existsSync(CHROMIUM) ? null : `page tests skipped: no Chromium at ${CHROMIUM} and "apt-get install -y chromium" failed — install Debian's chromium (or set CHROMIUM_PATH)`;
}

export const launchChromium = (): Promise<Browser> => chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });

/** A stereo sine of `hz` (0: silence), `seconds` long, with 10 ms fades so it does not click. */
export function tone(hz: number, seconds: number, amplitude: number): Float32Array[] {
  const n = Math.round(seconds * RATE);
  const ch = new Float32Array(n);
  const fade = Math.round(0.01 * RATE);
  for (let i = 0; i < n; i++) {
    const env = Math.min(1, i / fade, (n - 1 - i) / fade);
    ch[i] = hz > 0 ? amplitude * env * Math.sin((2 * Math.PI * hz * i) / RATE) : 0;
  }
  return [ch, ch.slice()];
}

export interface PageServer {
  url: string;
  under: RestUnderTest;
  /** Submits bytes under a name (multipart, as the page does); returns the hash. */
  submit(name: string, bytes: Uint8Array, key?: string): Promise<string>;
  /** A submitted song run through claim → stems → done, with these stems stored. */
  separate(hash: string, stems: Record<Track, Uint8Array>, durationSec?: number): Promise<void>;
  worker: TestWorker;
  close(): Promise<void>;
}

export async function pageServer(name: string, env: Record<string, string> = {}): Promise<PageServer> {
  const under = await restUnderTest(name, { RATE_LIMIT_PER_MIN: '100000', SUBMIT_RATE_LIMIT_PER_MIN: '100000', ...env });
  const server = http.createServer(under.rest.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const worker = new TestWorker(under.rest.deps.queue);
  return {
    url,
    under,
    worker,
    async submit(filename, bytes, key) {
      let req = request(under.rest.app).post('/apiv1/separate').set('X-Requested-With', 'XMLHttpRequest');
      if (key) req = req.set('X-API-Key', key);
      const res = await req.attach('file', Buffer.from(bytes), filename);
      if (res.status !== 200) throw new Error(`submit ${filename}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.hash as string;
    },
    async separate(hash, stems, durationSec = 7) {
      await worker.claim(hash);
      for (const t of TRACKS) await under.rest.deps.store.putStem(hash, t, stems[t]);
      await worker.recordStems(hash);
      await worker.complete(hash, durationSec);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await under.close();
    },
  };
}

/** A distinct small MP3 to submit (its bytes give the song its hash). */
export async function songBytes(seed: number, seconds = 1): Promise<{ bytes: Uint8Array; hash: string }> {
  const bytes = await synthesizeMp3({ seconds, seed });
  return { bytes, hash: songhash(bytes) };
}

/** The test-tone stems: drums 440 Hz, bass 220 Hz, other 880 Hz (quiet), vocals silent. */
export async function toneStems(seconds = 3): Promise<Record<Track, Uint8Array>> {
  const enc = (c: Float32Array[]) => encodeMp3(c, RATE, { vbrQuality: 2 });
  return {
    drums: await enc(tone(440, seconds, 0.5)),
    bass: await enc(tone(220, seconds, 0.3)),
    other: await enc(tone(880, seconds, 0.1)),
    vocals: await enc(tone(0, seconds, 0)),
  };
}

/** Peak frequency (Hz) of `samples` around their middle: Hann window, FFT, parabolic interpolation. */
export function peakHz(samples: ArrayLike<number>, sampleRate: number, size = 16384): number {
  const start = Math.max(0, Math.floor(samples.length / 2 - size / 2));
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  for (let i = 0; i < size; i++) re[i] = (samples[start + i] ?? 0) * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (size - 1)));
  // iterative radix-2 FFT
  for (let i = 1, j = 0; i < size; i++) {
    let bit = size >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j]!, re[i]!];
      [im[i], im[j]] = [im[j]!, im[i]!];
    }
  }
  for (let len = 2; len <= size; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    for (let i = 0; i < size; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(ang * k);
        const wi = Math.sin(ang * k);
        const a = i + k;
        const b = a + len / 2;
        const xr = re[b]! * wr - im[b]! * wi;
        const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr;
        im[b] = im[a]! - xi;
        re[a] = re[a]! + xr;
        im[a] = im[a]! + xi;
      }
    }
  }
  const mag = (k: number) => Math.hypot(re[k]!, im[k]!);
  let best = 1;
  for (let k = 2; k < size / 2; k++) if (mag(k) > mag(best)) best = k;
  const [l, c, r] = [mag(best - 1), mag(best), mag(best + 1)];
  const shift = (0.5 * (l - r)) / (l - 2 * c + r || 1);
  return ((best + shift) * sampleRate) / size;
}

/** Seconds from the first to the last sample above `threshold`. */
export function soundingSeconds(samples: ArrayLike<number>, sampleRate: number, threshold = 0.05): number {
  let first = -1;
  let last = -1;
  for (let i = 0; i < samples.length; i++) {
    if (Math.abs(samples[i]!) > threshold) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return first < 0 ? 0 : (last - first) / sampleRate;
}
