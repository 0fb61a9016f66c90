/**
 * Progressive results benchmark (`npm run bench:progressive`, issue 21): the real services as child
 * processes on loopback (rest, worker with the real model; local Redis under a prefix of its own;
 * the embedded S3-compatible store), a warm worker (one short song separated first) and an idle
 * queue, then a synthesized song (worker/fixtures/synth.ts; default 4 minutes) submitted as the
 * lab's JSON and its live vocals stream opened as soon as the submit answers. It prints:
 *
 *   - time to first audio: from the submit's response to the first decodable audio of the live
 *     vocals stream (the MP3 fed to mpg123 as it arrives; target ≤ 6 s);
 *   - the smallest margin for a 1× listener who starts playing at first audio: for every chunk of
 *     the stream, how long before such a listener reaches the audio it carries it arrived (negative:
 *     a stall);
 *   - the live stream's length against the finished vocals stem (±1 MP3 frame) and its SDR against
 *     it (≥ 25 dB), both decoded, the live stream aligned for the codecs' delay when it has no tag.
 *
 * Env: BENCH_SONG_SEC (default 240), BENCH_MODEL=standin (the stand-in model of the tests: checks the
 * bench itself in seconds, the figures then mean nothing), BENCH_ORT_THREADS (worker's threads,
 * default: the worker's own default). Do not run it beside other CPU work: the figures are timings.
 */
import { MPEGDecoder } from 'mpg123-decoder';
import { songhash } from '@msaas/common';
import { startStack, type Stack } from '../test/helpers/stack.ts';
import { synthesizeMp3 } from '../worker/fixtures/synth.ts';
import { sdr } from '../worker/fixtures/sdr.ts';
import { loadAverage } from './load-average.ts';

const RATE = 44_100;
const MP3_FRAME = 1152;
const SONG_SEC = Number(process.env.BENCH_SONG_SEC ?? 240);
const STANDIN = process.env.BENCH_MODEL === 'standin';
const TARGET_FIRST_AUDIO_MS = 6000;
const TARGET_SDR_DB = 25;

const log = (s: string): void => void process.stdout.write(`${s}\n`);
const verdict = (ok: boolean): string => (ok ? 'meets target' : 'MISSES target');

type Stereo = [Float32Array, Float32Array];

/** What arrived when: after each chunk, the frames decoded so far. */
interface Arrival {
  ms: number;
  frames: number;
}

/** Reads a live stream to its end, decoding as it arrives. */
async function listen(url: string, t0: number): Promise<{ arrivals: Arrival[]; audio: Stereo; bytes: number; complete: boolean }> {
  const decoder = new MPEGDecoder();
  await decoder.ready;
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`live stream answered ${res.status}: ${await res.text()}`);
  const arrivals: Arrival[] = [];
  const left: Float32Array[] = [];
  const right: Float32Array[] = [];
  let frames = 0;
  let bytes = 0;
  let complete = true;
  try {
    const reader = res.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      bytes += value.length;
      const out = decoder.decode(value);
      if (out.samplesDecoded > 0) {
        left.push(out.channelData[0]!.slice());
        right.push((out.channelData[1] ?? out.channelData[0]!).slice());
        frames += out.samplesDecoded;
        arrivals.push({ ms: performance.now() - t0, frames });
      }
    }
  } catch {
    complete = false;
  } finally {
    decoder.free();
  }
  const join = (parts: Float32Array[]): Float32Array => {
    const all = new Float32Array(frames);
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return all;
  };
  return { arrivals, audio: [join(left), join(right)], bytes, complete };
}

async function decodeWhole(bytes: Uint8Array): Promise<Stereo> {
  const decoder = new MPEGDecoder({ enableGapless: true });
  await decoder.ready;
  try {
    const out = decoder.decode(bytes);
    return [out.channelData[0]!.slice(), (out.channelData[1] ?? out.channelData[0]!).slice()];
  } finally {
    decoder.free();
  }
}

/** The live stream's offset against the stem (0 with its Info tag, the codecs' delay without), its SDR and length there. */
function compare(live: Stereo, finished: Stereo): { shift: number; db: number; length: number } {
  const span = Math.min(5 * RATE, finished[0].length);
  let shift = 0;
  let best = -Infinity;
  for (let s = 0; s <= 2 * MP3_FRAME; s++) {
    const db = sdr([finished[0].subarray(0, span)], [live[0].subarray(s, s + span)]).db;
    if (db > best) [shift, best] = [s, db];
  }
  const est: Stereo = [live[0].subarray(shift), live[1].subarray(shift)];
  return { shift, db: sdr(finished, est).db, length: est[0].length };
}

async function waitDone(stack: Stack, hash: string, timeoutMs: number): Promise<void> {
  const job = await stack.api.follow(hash, { via: 'events', timeoutMs });
  if (job.state !== 'done') throw new Error(`job ${hash} ended ${job.state}: ${job.error ?? ''}`);
}

async function main(): Promise<void> {
  const env: Record<string, string> = { RATE_LIMIT_PER_MIN: '1000000', SUBMIT_RATE_LIMIT_PER_MIN: '1000000', LOG_LEVEL: 'warn', MAX_DURATION_SEC: String(Math.max(900, SONG_SEC + 60)) };
  if (STANDIN) env.MODEL_PATH = (await import('../test/helpers/standin-model.ts')).standinModelPath();
  if (process.env.BENCH_ORT_THREADS) env.ORT_THREADS = process.env.BENCH_ORT_THREADS;
  log(`# bench:progressive — ${SONG_SEC} s synthesized song, ${STANDIN ? 'STAND-IN model (checks the bench only)' : 'real model'}; load ${loadAverage()}`);
  const stack = await startStack({ env });
  try {
    // A warm worker: its first session runs are slower than steady state.
    const warm = await synthesizeMp3({ seconds: 8, seed: 1 });
    await stack.api.submit(warm);
    await waitDone(stack, songhash(warm), 300_000);
    log(`worker warm (8 s song separated); load ${loadAverage()}`);

    const mp3 = await synthesizeMp3({ seconds: SONG_SEC, seed: 4242 });
    const hash = songhash(mp3);
    await stack.api.submit(mp3);
    const t0 = performance.now();
    const live = await listen(`${stack.url}/apiv1/jobs/${hash}/live/vocals.mp3`, t0);
    await waitDone(stack, hash, 30 * 60_000);
    const doneMs = performance.now() - t0;
    if (live.arrivals.length === 0) throw new Error('the live stream carried no audio');

    const first = live.arrivals[0]!.ms;
    // A listener who starts at first audio reaches frame f at first + f / RATE (ms); each arrival must come before the listener reaches the frames before it ran out.
    let margin = Number.POSITIVE_INFINITY;
    let marginAt = 0;
    for (let i = 1; i < live.arrivals.length; i++) {
      const had = live.arrivals[i - 1]!.frames;
      const m = first + (had / RATE) * 1000 - live.arrivals[i]!.ms;
      if (m < margin) [margin, marginAt] = [m, had / RATE];
    }
    const finished = await decodeWhole((await stack.api.stem(hash, 'vocals')).bytes);
    const c = compare(live.audio, finished);
    const lengthOk = Math.abs(c.length - finished[0].length) <= MP3_FRAME;

    log(`time to first audio (submit response → first decodable live vocals): ${(first / 1000).toFixed(2)} s — ${verdict(first <= TARGET_FIRST_AUDIO_MS)} (≤ ${TARGET_FIRST_AUDIO_MS / 1000} s)`);
    log(`smallest margin for a 1× listener from first audio: ${(margin / 1000).toFixed(2)} s (at ${marginAt.toFixed(1)} s into the song) — ${verdict(margin >= 0)} (never stalls)`);
    log(`live stream: ${live.bytes} B, ${live.complete ? 'ended with the song' : 'ENDED EARLY'}, the job done ${(doneMs / 1000).toFixed(1)} s after the submit`);
    log(`live length ${c.length} frames (offset ${c.shift}) vs finished stem ${finished[0].length}: ${c.length - finished[0].length} frames — ${verdict(lengthOk)} (±${MP3_FRAME})`);
    // Infinity: the same LAME fed the same samples makes the same frames as the worker's stem.
    const db = Number.isFinite(c.db) ? `${c.db.toFixed(1)} dB` : '∞ (the same decoded samples)';
    log(`live vs finished vocals SDR: ${db} — ${verdict(c.db >= TARGET_SDR_DB)} (≥ ${TARGET_SDR_DB} dB)`);
    log(`load ${loadAverage()}`);
  } finally {
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
