/**
 * Peak memory of the decode stage alone, per input format: `npx tsx bench/decode-rss.ts make DIR SECONDS [mp3 flac wav ogg opus m4a]`
 * writes DIR/song.{mp3,flac,wav,ogg,opus,m4a} (the synthesized song, real encoders); then
 * `/usr/bin/time -v npx tsx bench/decode-rss.ts decode FILE` streams one of them through
 * openAudioStream exactly as the chunk pipeline reads it (one 343,980-sample segment at a time into
 * one reused window) and prints the samples read and the process's own peak RSS. The model is not
 * loaded: what is measured is what decoding adds, which is what differs between formats.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { openAudioStream } from '../worker/src/separation/decode-audio.ts';

const [mode, target, secondsArg] = process.argv.slice(2);
if (mode === 'make' && target) {
  const seconds = Number(secondsArg ?? 300);
  const only = process.argv.slice(5);
  mkdirSync(target, { recursive: true });
  // The encoders are loaded only here, so that a decode run's RSS holds the decoders alone.
  const { encodeMp3 } = await import('@msaas/common/audio-encode/index');
  const { synthesizeSong } = await import('../worker/fixtures/synth.ts');
  const { encodeFlac, encodeOggOpus, encodeOggVorbis, encodeM4a, encodeWav } = await import('../worker/fixtures/encode-formats.ts');
  const song = synthesizeSong({ seconds, seed: 1 });
  const makers: Record<string, () => Promise<Uint8Array> | Uint8Array> = {
    flac: () => encodeFlac(song, 44100),
    wav: () => encodeWav(song, 44100),
    ogg: () => encodeOggVorbis(song, 44100),
    opus: () => encodeOggOpus(song, 44100),
    m4a: () => encodeM4a(song, 44100),
    mp3: () => encodeMp3(song, 44100, { vbrQuality: 2 }),
  };
  for (const [ext, make] of Object.entries(makers)) {
    if (only.length && !only.includes(ext)) continue;
    writeFileSync(path.join(target, `song.${ext}`), await make());
    console.log(`wrote ${seconds} s as song.${ext} to ${target}`);
  }
} else if (mode === 'decode' && target) {
  const bytes = new Uint8Array(readFileSync(target));
  const started = performance.now();
  const stream = await openAudioStream(bytes, { maxDurationSec: 3600 });
  const SEGMENT = 343980;
  const window = [new Float32Array(SEGMENT), new Float32Array(SEGMENT)];
  let samples = 0;
  let peakRss = process.memoryUsage().rss;
  for (;;) {
    const n = await stream.read(window, 0, SEGMENT);
    samples += n;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    if (n < SEGMENT) break;
  }
  stream.close();
  console.log(
    `${path.basename(target)} (${stream.format}, ${(bytes.length / 2 ** 20).toFixed(1)} MB): ${(samples / 44100).toFixed(2)} s decoded in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `peak RSS sampled per segment ${(peakRss / 2 ** 20).toFixed(0)} MB`,
  );
} else {
  console.error('usage: tsx bench/decode-rss.ts make DIR [SECONDS] | decode FILE');
  process.exit(1);
}
