/**
 * Encoders for a writer that streams a file as it is made and puts its head in place at the end
 * (the worker's multipart uploads): the body goes out piece by piece, and finish() returns the
 * bytes that go in front of it — the WAV header, FLAC's STREAMINFO, the MP3's Info/LAME tag frame,
 * all of which need the total. head ++ body is byte for byte the file createStemEncoder makes.
 */
import { FORMAT_INFO, type OutputFormat } from '../formats.ts';
import { DEFAULT_MP3, configuredLame, mp3QualityOf, type Mp3Quality } from './index.ts';
import { InfoTagBuilder } from './mp3-info-tag.ts';
import { wavFrames, wavHeader } from './wav.ts';
import { createFlacStreamEncoder } from './flac.ts';

export interface HeadLastEncoder {
  /** Encodes samples; body bytes go to the callback given at creation (the encoder's own buffer: copy what you keep). */
  encode(channels: readonly Float32Array[]): void;
  /** Ends the stream (its last body bytes go out first) and returns the head: the file is head ++ body. */
  finish(): Uint8Array;
}

async function mp3HeadLast(sampleRate: number, channels: 1 | 2, quality: Mp3Quality, onBody: (bytes: Uint8Array) => void): Promise<HeadLastEncoder> {
  const { encoder, vbrQuality } = await configuredLame(sampleRate, channels, quality);
  const tag = new InfoTagBuilder();
  let samples = 0;
  const out = (bytes: Uint8Array): void => {
    if (bytes.length === 0) return;
    tag.add(bytes);
    onBody(bytes);
  };
  return {
    encode(chs) {
      if (chs[0]!.length === 0) return;
      out(encoder.encode(chs.slice(0, channels)));
      samples += chs[0]!.length;
    },
    finish() {
      out(encoder.finalize());
      return samples === 0 ? new Uint8Array(0) : tag.tag({ samples, sampleRate, vbrQuality });
    },
  };
}

/** The head-last encoder of an output format (its `encoder` in FORMAT_INFO), with the same settings as createStemEncoder. */
export async function createHeadLastEncoder(
  format: OutputFormat,
  sampleRate: number,
  channels: 1 | 2,
  onBody: (bytes: Uint8Array) => void,
  vbr: Mp3Quality = DEFAULT_MP3,
): Promise<HeadLastEncoder> {
  const spec = FORMAT_INFO[format].encoder;
  switch (spec.codec) {
    case 'mp3':
      return mp3HeadLast(sampleRate, channels, mp3QualityOf(spec, vbr), onBody);
    case 'wav': {
      let frames = 0;
      return {
        encode(chs) {
          const n = chs[0]!.length;
          if (n === 0) return;
          onBody(wavFrames(chs.slice(0, channels)));
          frames += n;
        },
        finish: () => wavHeader(sampleRate, channels, frames),
      };
    }
    case 'flac':
      return createFlacStreamEncoder(sampleRate, channels, { onFrame: onBody });
  }
}
