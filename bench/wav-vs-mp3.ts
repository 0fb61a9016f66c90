/**
 * How closely a WAV job's stems agree with the MP3 job's of the same audio, with the real model:
 * `npx tsx bench/wav-vs-mp3.ts [SECONDS]`. The synthesized song (seed 1) goes in once as a 16-bit
 * WAV and once as LAME V2 MP3; the float stems (tapped before stem encoding) are compared per stem
 * (SDR, WAV job as reference), beside how far MP3 coding moves the mix itself.
 */
import { createEngine, decodeAudio, TRACKS, type Track } from '../worker/src/separation/index.ts';
import { encodeMp3 } from '@msaas/common/audio-encode/index';
import { synthesizeSong } from '../worker/fixtures/synth.ts';
import { encodeWav } from '../worker/fixtures/encode-formats.ts';
import { sdr } from '../worker/fixtures/sdr.ts';

const seconds = Number(process.argv[2] ?? 8);
const song = synthesizeSong({ seconds, seed: 1 });
const wav = encodeWav(song, 44100);
const mp3 = await encodeMp3(song, 44100, { vbrQuality: 2 });
const engine = await createEngine();
async function floatStems(bytes: Uint8Array): Promise<Record<Track, [Float32Array, Float32Array]>> {
  const parts = Object.fromEntries(TRACKS.map((t) => [t, [[], []] as Float32Array[][]])) as Record<Track, Float32Array[][]>;
  await engine.separateAudio(bytes, { onSamples: (t, l, r) => (parts[t][0]!.push(l.slice()), parts[t][1]!.push(r.slice())) });
  const join = (xs: Float32Array[]): Float32Array => {
    const out = new Float32Array(xs.reduce((s, x) => s + x.length, 0));
    let o = 0;
    for (const x of xs) (out.set(x, o), (o += x.length));
    return out;
  };
  return Object.fromEntries(TRACKS.map((t) => [t, [join(parts[t][0]!), join(parts[t][1]!)]])) as Record<Track, [Float32Array, Float32Array]>;
}
const a = await floatStems(wav);
const b = await floatStems(mp3);
await engine.close();
const mix = (await decodeAudio(mp3)).channels;
const n = Math.min(mix[0].length, song[0]!.length);
const line = TRACKS.map((t) => {
  const m = Math.min(a[t][0].length, b[t][0].length);
  return `${t} ${sdr(a[t].map((c) => c.subarray(0, m)), b[t].map((c) => c.subarray(0, m))).db.toFixed(1)} dB`;
});
console.log(`${seconds} s song, WAV-job stems vs MP3-job stems (float, before stem encoding): ${line.join(' / ')}; MP3 coding of the mix itself: ${sdr(song.map((c) => c.subarray(0, n)), mix.map((c) => c.subarray(0, n))).db.toFixed(1)} dB`);
