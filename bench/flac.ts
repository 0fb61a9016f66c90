/**
 * The stems' FLAC encoder against libFLAC (WebAssembly, @audio/encode-flac): `npm run bench:flac [SECONDS]`.
 * One synthesized stereo song (seed 1, default 60 s) stands for a stem; each encoder makes a
 * 24-bit FLAC of it, fed 1 s at a time as the worker feeds chunks. Prints, per encoder: encode time
 * per stem-minute (median of 3), size (and against 24-bit WAV), whether decoding it back with
 * @wasm-audio-decoders/flac (the decoder the mix route uses) gives exactly the 24-bit samples it was
 * given, and what its STREAMINFO holds (total samples, MD5) when written as a stream, header
 * first — as the worker's uploads and the mix route need it.
 */
import { performance } from 'node:perf_hooks';
import flac from '@audio/encode-flac';
import { FLACDecoder } from '@wasm-audio-decoders/flac';
import { createFlacStreamEncoder } from '../common/src/audio-encode/flac.ts';
import { PCM24_MAX, PCM24_MIN } from '../common/src/audio-encode/pcm24.ts';
import { WAV_HEADER_BYTES } from '../common/src/audio-encode/wav.ts';
import { synthesizeSong } from '../worker/fixtures/synth.ts';
import { loadAverage } from './load-average.ts';

const RATE = 44_100;
const seconds = Number(process.argv[2] ?? 60);
const song = synthesizeSong({ seconds, seed: 1 });
const frames = song[0]!.length;
/** The 24-bit samples both encoders are meant to store (ours: round(x · 2^23), clamped). */
const ints = song.map((ch) => Int32Array.from(ch, (x) => Math.min(PCM24_MAX, Math.max(PCM24_MIN, Math.round(x * 8_388_608)))));
/** libFLAC's wrapper scales by 2^23 − 1: fed these floats, it quantises to the same integers. */
const forLibflac = ints.map((ch) => Float32Array.from(ch, (v) => v / 8_388_607));

const join = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
};

async function ours(): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const enc = createFlacStreamEncoder(RATE, 2, { onBytes: (b) => void parts.push(b.slice()), totalSamples: frames });
  for (let i = 0; i < frames; i += RATE) enc.encode(song.map((c) => c.subarray(i, i + RATE)));
  enc.finish();
  return join(parts);
}

const libflac = (compression: number) => async (): Promise<Uint8Array> => {
  const enc = await flac({ sampleRate: RATE, channels: 2, bitDepth: 24, compression });
  const parts: Uint8Array[] = [];
  for (let i = 0; i < frames; i += RATE) parts.push(enc.encode(forLibflac.map((c) => c.subarray(i, i + RATE))));
  parts.push(enc.flush());
  enc.free();
  return join(parts);
};

/** The decoded 24-bit samples equal the ones given, every one. */
async function bitExact(bytes: Uint8Array): Promise<{ exact: boolean; decodedFrames: number; mismatches: number }> {
  const dec = new FLACDecoder();
  await dec.ready;
  const got: Float32Array[][] = [[], []];
  const out = await dec.decode(bytes);
  const rest = await dec.flush();
  for (const r of [out, rest]) if (r.samplesDecoded > 0) for (const c of [0, 1]) got[c]!.push(r.channelData[c]!);
  dec.free();
  let decodedFrames = 0;
  let mismatches = 0;
  for (const c of [0, 1]) {
    let i = 0;
    for (const piece of got[c]!) {
      for (const f of piece) {
        if (i < frames && Math.round(f * 8_388_607) !== ints[c]![i]) mismatches++;
        i++;
      }
    }
    decodedFrames = i;
  }
  return { exact: mismatches === 0 && decodedFrames === frames, decodedFrames, mismatches };
}

/** STREAMINFO's total samples (36 bits) and whether its MD5 is set. */
function streamInfo(bytes: Uint8Array): { totalSamples: number; md5: boolean } {
  const b = Buffer.from(bytes);
  return { totalSamples: (b[21]! & 0x0f) * 2 ** 32 + b.readUInt32BE(22), md5: b.subarray(26, 42).some((x) => x !== 0) };
}

const wavBytes = WAV_HEADER_BYTES + frames * 6;
console.log(`FLAC encoders, ${seconds} s stereo 24-bit (synthesized song, seed 1), fed 1 s at a time; load ${loadAverage()}`);
for (const [name, run] of [['ours (common/src/audio-encode/flac.ts)', ours], ['libFLAC -0 (@audio/encode-flac)', libflac(0)], ['libFLAC -5', libflac(5)], ['libFLAC -8', libflac(8)]] as const) {
  const times: number[] = [];
  let bytes: Uint8Array = new Uint8Array(0);
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    bytes = await run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const perMinute = (times[1]! * 60) / seconds;
  const check = await bitExact(bytes);
  const info = streamInfo(bytes);
  console.log(
    `${name}: ${perMinute.toFixed(0)} ms per stem-minute; ${(bytes.length / 2 ** 20).toFixed(2)} MiB (${((100 * bytes.length) / wavBytes).toFixed(1)} % of WAV); ` +
      `bit-exact ${check.exact ? 'yes' : `NO (${check.mismatches} samples differ, ${check.decodedFrames} frames decoded)`}; ` +
      `STREAMINFO written first: total samples ${info.totalSamples === frames ? 'set' : `${info.totalSamples} (of ${frames})`}, MD5 ${info.md5 ? 'set' : 'not set'}`,
  );
}
