/**
 * The header parsers are bounded by what they allocate, not by the file's claims (issue 22 item 3),
 * against a real rest process: a 64 MiB M4A whose sample table claims one AAC access unit per byte
 * (~67 M units: 768 MiB of tables for a parser that builds them first) is refused as too long, and
 * costs rest no more memory than an honest upload of the same size. RSS is the rest process's own,
 * read from /proc/<pid>/status.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeSong } from '../../worker/fixtures/synth.ts';
import { encodeM4a, encodeWav } from '../../worker/fixtures/encode-formats.ts';
import { forgeM4aSampleCount } from '../../common/test/forged-audio.ts';
import { printLinesOnFailure, startStack, type Stack } from '../../test/helpers/stack.ts';

const MiB = 2 ** 20;
/** Just under the default MAX_UPLOAD_MB (64). */
const SIZE = 64 * MiB - 4096;

let stack: Stack;
let restPid: number;

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Uploads `bytes` as multipart; the answer and rest's RSS growth to its peak (sampled every 20 ms). */
async function uploadMeasured(bytes: Uint8Array, name: string): Promise<{ status: number; body: { error?: string; detail?: string }; growthMiB: number; ms: number }> {
  await new Promise((r) => setTimeout(r, 500));
  const before = rssBytes(restPid);
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(restPid))), 20);
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(bytes)]), name);
  const started = Date.now();
  const res = await fetch(`${stack.url}/apiv1/separate`, { method: 'POST', body: form });
  const body = (await res.json()) as { error?: string; detail?: string };
  const ms = Date.now() - started;
  clearInterval(timer);
  peak = Math.max(peak, rssBytes(restPid));
  return { status: res.status, body, growthMiB: (peak - before) / MiB, ms };
}

beforeAll(async () => {
  stack = await startStack({ worker: false, logs: false, env: { LOG_LEVEL: 'error', SUBMIT_RATE_LIMIT_PER_MIN: '1000' } });
  restPid = stack.children.get('rest')!.pid!;
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

printLinesOnFailure(() => stack?.lines);

describe('header parsers bounded by what they allocate (real rest process)', () => {
  it('a 64 MiB M4A claiming 67 M access units is refused 400 too_long, costing rest < 20 MiB more than an honest 64 MiB upload', async () => {
    const m4a = await encodeM4a(synthesizeSong({ seconds: 1, seed: 5 }), 44100);
    // The control: a 64 MiB WAV (8 kHz mono, 70 minutes) refused for its length on the same path.
    const frames = (SIZE - 44) / 2;
    const honest = encodeWav([new Float32Array(frames)], 8000, { bits: 16 });
    const control = await uploadMeasured(honest, 'long.wav');
    expect(control.status).toBe(400);
    expect(control.body.error).toBe('too_long');

    // The media header left saying 1 s (a parser trusting it would accept the song), then saying 0.
    for (const mediaSec of [undefined, 0]) {
      const forged = forgeM4aSampleCount(m4a, SIZE, { mediaSec });
      const r = await uploadMeasured(forged, 'forged.m4a');
      process.stdout.write(
        `[parsers] forged ${(SIZE / MiB).toFixed(0)} MiB M4A (media header ${mediaSec ?? 'kept at 1'} s) → ${r.status} ${r.body.error}: ${r.body.detail}; rest RSS +${r.growthMiB.toFixed(1)} MiB in ${r.ms} ms; ` +
          `honest 64 MiB WAV → ${control.status} ${control.body.error}, +${control.growthMiB.toFixed(1)} MiB in ${control.ms} ms; load ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`,
      );
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('too_long');
      expect(r.body.detail).toMatch(/the song is \d+ s long; the limit is 900 s/);
      expect(r.growthMiB).toBeLessThan(control.growthMiB + 20);
    }
    const health = await fetch(`${stack.url}/healthz`);
    expect(health.status).toBe(200);
  }, 120_000);
});
