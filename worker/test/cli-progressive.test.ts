import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readWav24 } from '@msaas/common/audio-encode/index';
import { standinModelPath } from '../../test/helpers/standin-model.ts';
import { sineWav } from '../../test/reliability/sine-wav.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'worker/src/cli.ts');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

/** Runs the CLI (stand-in model); `watch` is called every 50 ms while it runs. */
function run(args: string[], watch: () => void = () => {}): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(TSX, [CLI, ...args, '--model', standinModelPath(), '--original-graph', '--threads', '1'], { cwd: ROOT, env: { ...process.env, MALLOC_HUGEPAGES: '0' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setInterval(watch, 50);
    child.on('exit', (status) => {
      clearInterval(timer);
      resolve({ status, stderr });
    });
  });
}

describe('separate CLI --progressive', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'msaas-cli-progressive-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes WAV files that are valid while they grow, chunk by chunk, and end as the --format wav files', async () => {
    const seconds = 30;
    const input = path.join(dir, 'sine.wav');
    writeFileSync(input, sineWav(seconds, 5));
    const out = path.join(dir, 'progressive');
    const file = path.join(out, 'sine-vocals.wav');
    const snapshots: { dataFrames: number; fileBytes: number; bytes: Buffer }[] = [];
    const r = await run([input, '-o', out, '--progressive', '--quiet'], () => {
      if (!existsSync(file)) return;
      const bytes = readFileSync(file);
      if (bytes.length < 44) return;
      const dataBytes = bytes.readUInt32LE(40);
      const last = snapshots.at(-1);
      if (!last || last.dataFrames !== dataBytes / 6) snapshots.push({ dataFrames: dataBytes / 6, fileBytes: bytes.length, bytes });
    });
    expect(r.status, r.stderr).toBe(0);
    const final = readFileSync(file);
    const total = seconds * 44100;
    expect(readWav24(final).channels[0]!.length).toBe(total);

    // While it grew: a RIFF/WAVE header whose sizes name whole frames already in the file, growing
    // in several steps before the end; what it named then is what the finished file holds.
    const growing = snapshots.filter((s) => s.dataFrames > 0 && s.dataFrames < total);
    expect(growing.length).toBeGreaterThanOrEqual(2);
    for (const s of snapshots) {
      expect(Number.isInteger(s.dataFrames)).toBe(true);
      expect(s.bytes.toString('latin1', 0, 4)).toBe('RIFF');
      expect(s.bytes.readUInt32LE(4)).toBe(36 + s.dataFrames * 6);
      expect(44 + s.dataFrames * 6).toBeLessThanOrEqual(s.fileBytes);
      const early = readWav24(s.bytes.subarray(0, 44 + s.dataFrames * 6));
      expect(early.channels[0]!.length).toBe(s.dataFrames);
      expect(Buffer.compare(s.bytes.subarray(44, 44 + s.dataFrames * 6), final.subarray(44, 44 + s.dataFrames * 6))).toBe(0);
    }
    expect(growing.map((s) => s.dataFrames)).toEqual([...growing.map((s) => s.dataFrames)].sort((a, b) => a - b));

    // The finished files are byte for byte those of a plain --format wav run.
    const plain = path.join(dir, 'plain');
    expect((await run([input, '-o', plain, '--format', 'wav', '--quiet'])).status).toBe(0);
    for (const stem of ['drums', 'bass', 'other', 'vocals']) {
      expect(Buffer.compare(readFileSync(path.join(out, `sine-${stem}.wav`)), readFileSync(path.join(plain, `sine-${stem}.wav`))), stem).toBe(0);
    }
  }, 180_000);

  it('refuses --progressive with another format as a usage error', async () => {
    const r = await run([path.join(dir, 'sine.wav'), '-o', path.join(dir, 'x'), '--progressive', '--format', 'flac']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--progressive writes growing WAV files/);
  }, 60_000);
});
