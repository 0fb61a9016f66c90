/**
 * The pipeline's own CPU cost, without the model: `npm run bench:pipeline [-- SECONDS]` (default 60).
 * On the synthesized song (seed 1) as LAME V2 MP3, times each stage the chunk pipeline runs besides
 * `session.run`, on this thread, in CPU time (process.cpuUsage, which counts every thread of the
 * process; nothing else runs here): MP3 decode, the forward spectrogram of every segment, the
 * inverse spectrogram of the 4 sources of every segment (fed a random model output of the right
 * shape), and encoding the four stereo stems with the default MP3 setting. Prints CPU ms per audio
 * second per stage and the total, the figure item 2 of issue 14 asks for: on two cores the model
 * uses both, so each of these CPU seconds slows the separation by about as much.
 */
import { decodeMp3, encodeMp3, SEGMENT, Spectrogram, TRACKS } from '../worker/src/separation/index.ts';
import { strideFor } from '../worker/src/separation/chunking.ts';
import { synthesizeSong } from '../worker/fixtures/synth.ts';
import { mulberry32 } from '../worker/src/separation/random.ts';
import { loadAverage } from './load-average.ts';

const seconds = Number(process.argv[2] ?? 60);
if (!(seconds > SEGMENT / 44100)) throw new RangeError(`SECONDS must exceed one segment (${(SEGMENT / 44100).toFixed(1)} s)`);
const SR = 44100;
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
async function measure<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t = cpuMs();
  const value = await fn();
  return { ms: cpuMs() - t, value };
}

const song = synthesizeSong({ seconds, seed: 1 });
const mp3 = await encodeMp3(song, SR);

const decode = await measure(() => decodeMp3(mp3, { maxDurationSec: 3600 }));
const [left, right] = decode.value.channels;
// as the chunk pipeline: one segment every stride (overlap 0.25) from 0 to the end, as Demucs' apply does
const stride = strideFor(SEGMENT, 0.25);
const segments = Math.max(1, Math.ceil(left.length / stride));
const spectrogram = new Spectrogram(SEGMENT);
const spec = new Float32Array(spectrogram.specSize);
const forward = await measure(() => {
  for (let s = 0; s < segments; s++) {
    const at = Math.min(s * stride, Math.max(0, left.length - SEGMENT));
    spectrogram.forward(left.subarray(at, at + SEGMENT), right.subarray(at, at + SEGMENT), spec);
  }
});
const rand = mulberry32(5);
const modelOut = Float32Array.from({ length: TRACKS.length * spectrogram.specSize }, () => (rand() - 0.5) * 0.1);
const outL = new Float32Array(SEGMENT);
const outR = new Float32Array(SEGMENT);
const inverse = await measure(() => {
  for (let s = 0; s < segments; s++) for (let k = 0; k < TRACKS.length; k++) spectrogram.inverseAdd(modelOut, k * spectrogram.specSize, outL, outR);
});
const encode = await measure(async () => {
  for (let k = 0; k < TRACKS.length; k++) await encodeMp3(decode.value.channels, SR);
});

const audioSec = left.length / SR;
console.log(`# bench:pipeline — ${new Date().toISOString()}, ${audioSec.toFixed(1)} s of audio, ${segments} segments, load average ${loadAverage()}`);
console.log('| stage | CPU ms | CPU ms per audio second |');
console.log('|---|---|---|');
const rows: Array<[string, number]> = [
  ['MP3 decode (mpg123)', decode.ms],
  [`spectrogram, ${segments} segments`, forward.ms],
  [`inverse spectrogram, ${segments} × ${TRACKS.length} sources`, inverse.ms],
  [`MP3 encode (LAME V2), ${TRACKS.length} stereo stems`, encode.ms],
];
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(0)} | ${(ms / audioSec).toFixed(1)} |`);
const total = rows.reduce((a, [, ms]) => a + ms, 0);
console.log(`| **total** | ${total.toFixed(0)} | ${(total / audioSec).toFixed(1)} |`);
