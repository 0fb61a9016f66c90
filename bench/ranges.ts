/**
 * One song, many workers (`npm run bench:ranges`, issue 23). Prints:
 *
 *   1. Stitch + encode: the stitch and encode work for a BENCH_LONG_SEC song (default 10 minutes) on
 *      one worker — reading the ranges' outputs in the stored layout, overlap-adding their edges, and
 *      encoding the four model stems plus the instrumental (5 stems) as VBR MP3 and as FLAC — from
 *      range outputs made of noise (encoding does not depend on the model; only on the samples). The
 *      service spreads it over one unit per stem, run beside the ranges as they finish; this is the
 *      total, the unit is about a fifth.
 *   2. On this machine, the real services (rest, workers, local Redis, the embedded store) and a
 *      BENCH_SONG_SEC song (default 4 minutes), submit to done:
 *        A. one worker of 2 threads, the song run whole (SPLIT_MIN_SEC=0);
 *        B. the same worker, the song split (the overhead of splitting and stitching; target ≤ 5 %);
 *        C. two workers of 1 thread each, the song split (against A: same 2 cores).
 *   3. A simulation from the costs measured in 2 (per chunk, from B, where the song's encoding units
 *      ran beside its ranges on the same 2 cores; per worker: one fetch of the upload and the decode
 *      up to its first range, since a worker keeps the song's decoder between its ranges; per range:
 *      the store of its output; per unit and range: reading the range's part of its stem back, unless
 *      the range ran on the unit's own worker, stitching and encoding it, after the range is done and
 *      the unit has encoded the range before) for a 4- and a 10-minute song with N = 1, 2, 4, 8, 16,
 *      32 workers of 2 cores each, against the target T(N) ≤ 1.3 × T(1) / N up to N = 8, and where it
 *      stops scaling.
 *
 * Each run also prints each worker process's peak resident set (VmHWM) before it stops.
 *
 * Env: BENCH_SONG_SEC (240), BENCH_LONG_SEC (600), BENCH_RANGE_CHUNKS (4, SPLIT_RANGE_CHUNKS),
 * BENCH_ENCODE_FORMATS (mp3,flac; the first is the one the simulation uses),
 * BENCH_MODEL=standin (the tests' stand-in model: checks the benchmark itself in seconds; the
 * figures of 2 and 3 then mean nothing), BENCH_SKIP_RUNS=1 (only 1), BENCH_ROUNDS (1: A and B in turn
 * this many times, each pair's overhead printed and their median judged; the simulation uses the
 * median pair's B). Do not run it beside other CPU
 * work: the figures are timings.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { TRACKS, songhash, type OutputFormat, type Stem } from '@msaas/common';
import { createEngine, decodeAudio, type OutputSink, type RangeOutput } from '../worker/src/separation/index.ts';
import { SEGMENT } from '../worker/src/separation/model.ts';
import { planSplit, rangeBytes, readRange, type StoredRange } from '../worker/src/ranges.ts';
import { stitchOverlap, transitionWeight } from '../worker/src/separation/chunking.ts';
import { startStack, type Stack } from '../test/helpers/stack.ts';
import { standinModelPath } from '../test/helpers/standin-model.ts';
import { synthesizeMp3 } from '../worker/fixtures/synth.ts';
import { variant } from '../test/reliability/support.ts';
import { loadAverage } from './load-average.ts';

const RATE = 44_100;
const SONG_SEC = Number(process.env.BENCH_SONG_SEC ?? 240);
const LONG_SEC = Number(process.env.BENCH_LONG_SEC ?? 600);
const RANGE_CHUNKS = Number(process.env.BENCH_RANGE_CHUNKS ?? 4);
const STANDIN = process.env.BENCH_MODEL === 'standin';
const SKIP_RUNS = process.env.BENCH_SKIP_RUNS === '1';
/** A and B run in turn this many times: the machine's speed drifts, so the overhead is judged pair by pair (median). */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 1));
const STRIDE = Math.floor(0.75 * SEGMENT);
const WORKERS = [1, 2, 4, 8, 16, 32];

const log = (s: string): void => void process.stdout.write(`${s}\n`);
const f1 = (n: number): string => n.toFixed(1);

/** 1. The stitcher's read + stitch + encode of a song of `seconds`, 5 stems, in `format`. */
async function stitchEncode(seconds: number, format: OutputFormat): Promise<{ stitchSec: number; encodeSec: number; bytes: number }> {
  const engine = await createEngine({ modelPath: standinModelPath() });
  try {
    const frames = Math.round(seconds * RATE);
    const chunks = Math.ceil(frames / STRIDE);
    const starts: number[] = [];
    for (let a = 0; a < chunks; a += RANGE_CHUNKS) starts.push(a);
    const ov = SEGMENT - STRIDE;
    let seed = 1;
    const noise = (n: number): Float32Array => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = (((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1) * 0.3;
      return a;
    };
    // stored range outputs as the workers leave them (noise stands for the model's output)
    const stored: Uint8Array[] = starts.map((a, i) => {
      const from = i === 0 ? 0 : a * STRIDE + ov;
      const to = i + 1 < starts.length ? starts[i + 1]! * STRIDE : frames;
      const out: RangeOutput = {
        startFrame: from,
        final: TRACKS.map(() => [noise(to - from), noise(to - from)]),
        head: i === 0 ? null : TRACKS.map(() => [noise(ov), noise(ov)]),
        tail: i + 1 < starts.length ? { acc: TRACKS.map(() => [noise(ov), noise(ov)]), weightSum: noise(ov).map((x) => 1 + Math.abs(x)) } : null,
        songFrames: null,
        stats: { chunks: 0, samples: 0, totalMs: 0, runMs: 0, nonFiniteReplaced: 0 },
      };
      return rangeBytes(out);
    });
    const weight = transitionWeight(SEGMENT);
    let bytes = 0;
    const open = (_s: Stem, _f: OutputFormat): OutputSink => ({ write: (b) => void (bytes += b.length) });
    let stitchMs = 0;
    const t0 = performance.now();
    await engine.encodeToSinks({ formats: [format], stems: [...TRACKS, 'instrumental'] }, open, async (write) => {
      let prev: StoredRange | null = null;
      for (const b of stored) {
        const s0 = performance.now();
        const own = readRange(b);
        const tracks = own.head && prev?.tail ? stitchOverlap(prev.tail, own.head, weight).tracks : null;
        stitchMs += performance.now() - s0;
        const parts = tracks ? [tracks, own.final] : [own.final];
        for (const part of parts) {
          const len = part[0]![0]!.length;
          for (let at = 0; at < len; at += STRIDE) for (let s = 0; s < 4; s++) write(s, part[s]![0]!.subarray(at, at + STRIDE), part[s]![1]!.subarray(at, at + STRIDE));
        }
        prev = own;
      }
    });
    const total = (performance.now() - t0) / 1000;
    return { stitchSec: stitchMs / 1000, encodeSec: total - stitchMs / 1000, bytes };
  } finally {
    await engine.close();
  }
}

interface RangeLine {
  chunks: number;
  runSec: number;
  fetchSec: number;
  fetchMB: number;
  storeSec: number;
  storeMB: number;
  firstChunk: number;
}

/** What one submit-to-done run measured, from the workers' own log lines. */
interface Run {
  sec: number;
  ranges: RangeLine[];
  stitchSec: number;
  encodeSec: number;
  /** Each worker process's peak resident set (VmHWM), MiB. */
  peakMiB: number[];
}

/** A process's peak resident set so far (VmHWM), MiB; NaN when it cannot be read. */
function peakRssMiB(pid: number | undefined): number {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

async function runSong(stack: Stack, song: Buffer, workers: Record<string, string>[]): Promise<Run> {
  const children = [];
  for (const env of workers) children.push(await stack.addWorker(env));
  let peakMiB: number[] = [];
  try {
    const hash = songhash(song);
    const t0 = Date.now();
    await stack.api.submit(song);
    const done = await stack.api.follow(hash, { until: (j) => j.state === 'done' || j.state === 'failed', intervalMs: 200, timeoutMs: 3_600_000 });
    if (done.state !== 'done') throw new Error(`the song failed: ${done.error}`);
    const sec = (Date.now() - t0) / 1000;
    const lines = stack.lines.filter((l) => l.service === 'worker' && l.line.includes(hash)).map((l) => l.line);
    const ranges = lines.flatMap((l) => {
      const m = /\(chunks (\d+)–(?:\d+|end), (\d+) run\) separated in ([\d.]+) s; upload ([\d.]+) MB fetched in ([\d.]+) s, output ([\d.]+) MB stored in ([\d.]+) s/.exec(l);
      return m ? [{ firstChunk: Number(m[1]), chunks: Number(m[2]), runSec: Number(m[3]), fetchMB: Number(m[4]), fetchSec: Number(m[5]), storeMB: Number(m[6]), storeSec: Number(m[7]) }] : [];
    });
    // one encoding unit per stem (split-8.lua), beside the ranges: each logs its stitch and encode + upload time
    const units = lines.flatMap((l) => {
      const m = /\w+ stitched in ([\d.]+) s, encoded and uploaded in ([\d.]+) s/.exec(l);
      return m ? [[Number(m[1]), Number(m[2])] as const] : [];
    });
    peakMiB = children.map((c) => peakRssMiB(c.pid));
    return { sec, ranges, stitchSec: units.reduce((a, u) => a + u[0], 0), encodeSec: units.reduce((a, u) => a + u[1], 0), peakMiB };
  } finally {
    for (const c of children) {
      c.kill('SIGTERM');
      await new Promise((r) => c.once('exit', r));
    }
  }
}

/**
 * Greedy list scheduling of a song's ranges (in queue order) over `n` workers: when each is done.
 * A worker keeps the song's decoder between its ranges (worker/src/separation/song-reader.ts): its
 * first range fetches the upload, and each range decodes the gap from where the worker's decoder is
 * (from the start if it would have to go back) besides its own span (in `cost`).
 */
function rangesSchedule(ranges: { a0: number; end: number; cost: number }[], n: number, fetchSec: number, decodeSec: (chunks: number) => number): number[] {
  const free = new Array<number>(n).fill(0);
  const at = new Array<number | null>(n).fill(null);
  return ranges.map((r) => {
    const w = free.indexOf(Math.min(...free));
    const from = at[w] ?? 0;
    free[w]! += (at[w] === null ? fetchSec : 0) + decodeSec(from <= r.a0 ? r.a0 - from : r.a0) + r.cost;
    at[w] = r.end;
    return free[w]!;
  });
}

/**
 * An encoding unit beside the ranges (worker/src/ranges.ts encodeStem): it takes range i once range i
 * is done and it has encoded range i-1, then spends `cost(i)` on it. When it has encoded the last.
 */
function unitFinish(rangeDone: readonly number[], cost: (i: number) => number): number {
  let t = 0;
  rangeDone.forEach((done, i) => (t = Math.max(t, done) + cost(i)));
  return t;
}

async function main(): Promise<void> {
  log(`bench:ranges — ${availableParallelism()} cores, load average ${loadAverage()}${STANDIN ? ' — STAND-IN MODEL: the figures below check the benchmark only' : ''}`);

  // 1. stitch + encode
  const enc: Record<string, { stitchSec: number; encodeSec: number; bytes: number }> = {};
  for (const format of (process.env.BENCH_ENCODE_FORMATS ?? 'mp3,flac').split(',') as OutputFormat[]) {
    enc[format] = await stitchEncode(LONG_SEC, format);
    log(`stitch + encode of a ${f1(LONG_SEC / 60)}-minute song, 5 stems (${format}): stitch ${enc[format]!.stitchSec.toFixed(2)} s, encode ${f1(enc[format]!.encodeSec)} s (${f1(enc[format]!.bytes / 1e6)} MB)`);
  }
  const first = Object.values(enc)[0]!;
  const perAudioSec = { stitch: first.stitchSec / LONG_SEC, encode: first.encodeSec / LONG_SEC };
  if (SKIP_RUNS) return;

  // 2. the real services
  const mp3 = Buffer.from(await synthesizeMp3({ seconds: SONG_SEC, seed: 41 }));
  const decodeT0 = performance.now();
  await decodeAudio(mp3);
  const decodePerAudioSec = (performance.now() - decodeT0) / 1000 / SONG_SEC;
  const stack = await startStack({ worker: false, env: { ...(STANDIN ? { MODEL_PATH: standinModelPath() } : {}), SPLIT_RANGE_CHUNKS: String(RANGE_CHUNKS), PROGRESSIVE_PIECES: 'false' } });
  try {
    const splitAt = String(Math.max(1, Math.floor(SONG_SEC / 2)));
    const pairs: { a: Run; b: Run; overhead: number }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const a = await runSong(stack, variant(mp3, 10 * i + 1), [{ ORT_THREADS: '2', SPLIT_MIN_SEC: '0' }]);
      const b = await runSong(stack, variant(mp3, 10 * i + 2), [{ ORT_THREADS: '2', SPLIT_MIN_SEC: splitAt }]);
      pairs.push({ a, b, overhead: (100 * (b.sec - a.sec)) / a.sec });
    }
    const { a, b } = [...pairs].sort((x, y) => x.overhead - y.overhead)[Math.floor((pairs.length - 1) / 2)]!;
    const c = await runSong(stack, variant(mp3, 3), [
      { ORT_THREADS: '1', SPLIT_MIN_SEC: splitAt },
      { ORT_THREADS: '1', SPLIT_MIN_SEC: splitAt },
    ]);
    const chunks = Math.ceil((SONG_SEC * RATE) / STRIDE);
    log(`\n${f1(SONG_SEC / 60)}-minute song (${chunks} chunks, ranges of ~${RANGE_CHUNKS}), submit to done:`);
    const peak = (r: Run): string => `peak RSS ${r.peakMiB.map((m) => m.toFixed(0)).join(' + ')} MiB`;
    log(`  A  1 worker × 2 threads, whole:   ${f1(a.sec)} s (${peak(a)})`);
    log(`  B  1 worker × 2 threads, split:   ${f1(b.sec)} s (${b.ranges.length} ranges; overhead ${f1((100 * (b.sec - a.sec)) / a.sec)} % — target ≤ 5 %; stitch ${b.stitchSec.toFixed(2)} s, encode + upload ${f1(b.encodeSec)} s, summed over the units beside the ranges; ${peak(b)})`);
    log(`  C  2 workers × 1 thread, split:   ${f1(c.sec)} s (${f1(a.sec / c.sec)}× A; ${peak(c)})`);
    if (pairs.length > 1) {
      log(`  A then B, ${pairs.length} rounds: ${pairs.map((p) => `${f1(p.a.sec)} → ${f1(p.b.sec)} s (${p.overhead >= 0 ? '+' : ''}${f1(p.overhead)} %)`).join('; ')}`);
      const sorted = pairs.map((p) => p.overhead).sort((x, y) => x - y);
      const mid = sorted.length / 2;
      const median = sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
      log(`  split overhead, median of the pairs: ${f1(median)} % — target ≤ 5 % (A and B above: the lower middle pair)`);
    }

    // 3. simulation from B's costs (2-core workers)
    const ranges = b.ranges;
    // B's worker keeps the song's decoder between its ranges: a range's run decodes its own span only (its chunks' cost includes it)
    const perChunk = ranges.reduce((s, r) => s + r.runSec, 0) / ranges.reduce((s, r) => s + r.chunks, 0);
    const fetchPerMB = ranges.reduce((s, r) => s + r.fetchSec, 0) / Math.max(1e-9, ranges.reduce((s, r) => s + r.fetchMB, 0));
    const storePerMB = ranges.reduce((s, r) => s + r.storeSec, 0) / Math.max(1e-9, ranges.reduce((s, r) => s + r.storeMB, 0));
    const wholePerChunk = a.sec / chunks;
    const uploadMBPerSec = mp3.length / 1e6 / SONG_SEC;
    log(`\nmeasured (B): ${perChunk.toFixed(2)} s per chunk, decode ${(decodePerAudioSec * 1000).toFixed(1)} ms per audio-second before a range, fetch ${(fetchPerMB * 1000).toFixed(0)} ms/MB, store ${(storePerMB * 1000).toFixed(0)} ms/MB; whole run (A) ${wholePerChunk.toFixed(2)} s per chunk; stitcher (1) ${(perAudioSec.stitch * 1000).toFixed(1)} + ${(perAudioSec.encode * 1000).toFixed(1)} ms per audio-second`);
    for (const seconds of [240, 600]) {
      const n = Math.ceil((seconds * RATE) / STRIDE);
      const starts = planSplit(seconds * RATE, STRIDE, RANGE_CHUNKS) ?? [0];
      const ranges = starts.map((a0, i) => {
        const size = (starts[i + 1] ?? n) - a0;
        const outMB = (size * STRIDE * 32 + 9 * (SEGMENT - STRIDE) * 4) / 1e6;
        return { a0, end: a0 + size, cost: size * perChunk + storePerMB * outMB };
      });
      const fetchSec = fetchPerMB * uploadMBPerSec * seconds;
      const decodeSec = (chunks: number): number => decodePerAudioSec * ((chunks * STRIDE) / RATE);
      // the encoding: one unit per stem (5: four model stems + instrumental) beside the ranges; per
      // range, a unit reads its stem's quarter of the range output (the instrumental three quarters)
      // from the store unless the range ran on its own worker (1 in N), then stitches and encodes it
      const unitCost = (q: number, N: number) => (i: number): number => {
        const frames = (ranges[i]!.end - ranges[i]!.a0) * STRIDE;
        return (1 - 1 / N) * fetchPerMB * ((frames * 8 * q) / 1e6) + ((perAudioSec.stitch + perAudioSec.encode) * (frames / RATE)) / 5;
      };
      const t1 = n * wholePerChunk;
      log(`\n${seconds / 60}-minute song (${n} chunks, ${starts.length} ranges): T(1) whole = ${f1(t1)} s`);
      let stops: { N: number; lastRange: number; tail: number } | null = null;
      for (const N of WORKERS) {
        const done = rangesSchedule(ranges, N, fetchSec, decodeSec);
        const lastRange = Math.max(...done);
        const end = Math.max(lastRange, ...[1, 1, 1, 1, 3].map((q) => unitFinish(done, unitCost(q, N))));
        const t = fetchPerMB * uploadMBPerSec * seconds + end;
        const target = (1.3 * t1) / N;
        if (stops === null && t > target) stops = { N, lastRange, tail: end - lastRange };
        log(
          `  N=${String(N).padStart(2)}: ${f1(t).padStart(7)} s  target ${f1(target).padStart(7)} s  ${t <= target ? 'meets' : N <= 8 ? 'MISSES' : 'beyond'}  ` +
            `(speed-up ${f1(t1 / t)}×; last range done at ${f1(lastRange)} s, encoding tail ${f1(end - lastRange)} s)`,
        );
      }
      // the slowest unit's own work: its stem (the instrumental: three) read back and encoded whole, one encoder
      const unitWork = fetchPerMB * ((n * STRIDE * 8 * 3) / 1e6) + ((perAudioSec.stitch + perAudioSec.encode) * seconds) / 5;
      log(
        stops === null
          ? '  meets 1.3·T(1)/N at every N here'
          : `  stops meeting 1.3·T(1)/N at N=${stops.N}: the ${starts.length} ranges end at ${f1(stops.lastRange)} s (no more workers than ranges help, and the last round leaves workers idle; ` +
              `each worker pays one fetch, the decode up to its first range and each range's store), and the units end ${f1(stops.tail)} s after: ` +
              `a stem is one encoder, so the slowest unit needs ${f1(unitWork)} s of its own (the instrumental's three stems read back and encoded) however many workers there are.`,
      );
    }
  } finally {
    await stack.stop();
  }
}

await main();
