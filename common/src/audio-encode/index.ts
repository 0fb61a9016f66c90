/**
 * Stem encoders, pure and streaming (chunk in, file bytes at the end), shared by the worker (stems)
 * and rest (custom mixes): MP3 through LAME (wasm), 24-bit WAV and 24-bit FLAC in TypeScript. Which
 * encoder a format uses is its `encoder` in FORMAT_INFO (formats.ts).
 */
import { createMp3Encoder } from 'wasm-media-encoders';
import { FORMAT_INFO, type OutputFormat } from '../formats.ts';
import { streamingInfoTag, withInfoTag } from './mp3-info-tag.ts';
import { createWavStreamEncoder } from './wav.ts';
import { createFlacStreamEncoder } from './flac.ts';

/** MP3 quality: LAME VBR quality 0 (best) .. 9, or a constant bitrate in kbps. */
export type Mp3Quality = { vbrQuality?: number } | { bitrate?: number };

/** LAME V2: VBR around 190 kbps, transparent for most material. */
export const DEFAULT_MP3: Mp3Quality = { vbrQuality: 2 };

const CBR = [8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320] as const;
type Cbr = 8 | 16 | 24 | 32 | 40 | 48 | 64 | 80 | 96 | 112 | 128 | 160 | 192 | 224 | 256 | 320;

function isCbr(kbps: number): kbps is Cbr {
  return (CBR as readonly number[]).includes(kbps);
}

type LameEncoder = Awaited<ReturnType<typeof createMp3Encoder>>;

/** A LAME encoder set to `quality`; `vbrQuality` is what the Info tag records (undefined for CBR). */
export async function configuredLame(sampleRate: number, channels: 1 | 2, quality: Mp3Quality): Promise<{ encoder: LameEncoder; vbrQuality: number | undefined }> {
  const encoder = await createMp3Encoder();
  if ('bitrate' in quality && quality.bitrate !== undefined) {
    if (!isCbr(quality.bitrate)) throw new RangeError(`unsupported MP3 bitrate ${quality.bitrate} kbps`);
    encoder.configure({ sampleRate, channels, bitrate: quality.bitrate });
    return { encoder, vbrQuality: undefined };
  }
  const q = 'vbrQuality' in quality && quality.vbrQuality !== undefined ? quality.vbrQuality : 2;
  if (!(q >= 0 && q <= 9)) throw new RangeError(`MP3 VBR quality must be 0..9, got ${q}`);
  encoder.configure({ sampleRate, channels, vbrQuality: q });
  return { encoder, vbrQuality: q };
}

/** The MP3 setting of an MP3 format's encoder (FORMAT_INFO): its fixed bitrate, else `vbr` (the configured VBR). */
export const mp3QualityOf = (spec: { codec: string; bitrate?: number }, vbr: Mp3Quality): Mp3Quality => (spec.bitrate !== undefined ? { bitrate: spec.bitrate } : vbr);

import { ByteSink } from './pcm24.ts';

import type { StemEncoder } from './stem-encoder.ts';
export type { StemEncoder } from './stem-encoder.ts';

/**
 * Stream instead of collecting: the encoder hands its bytes to `onBytes` as it makes them (they are
 * the encoder's: copy what you keep) and finish() returns an empty array. The file's header goes
 * first, so the length is given up front: `totalSamples` samples per channel must be fed, exactly
 * (finish() throws otherwise). MP3: the Info tag is built from the count (streamingInfoTag) —
 * except when LAME resamples (VBR quality 8–9, low bitrates), where the stream is collected and
 * handed over at finish(), tag in front, as without this option.
 */
export interface StemStreamOptions {
  onBytes: (bytes: Uint8Array) => void;
  totalSamples: number;
}

export async function createMp3StreamEncoder(
  sampleRate: number,
  channels: 1 | 2,
  quality: Mp3Quality = DEFAULT_MP3,
  stream?: StemStreamOptions,
): Promise<StemEncoder> {
  const { encoder, vbrQuality } = await configuredLame(sampleRate, channels, quality);
  const sink = new ByteSink();
  let samples = 0;
  if (stream) return streamingMp3(encoder, stream, { sampleRate, channels, vbrQuality });
  return {
    encode(chs) {
      if (chs[0].length === 0) return;
      sink.push(encoder.encode(chs.slice(0, channels)));
      samples += chs[0].length;
    },
    finish() {
      sink.push(encoder.finalize());
      const bare = sink.concat();
      if (samples === 0) return bare;
      return withInfoTag(bare, { samples, sampleRate, vbrQuality });
    },
  };
}

/** createMp3StreamEncoder with StemStreamOptions: frames go out as LAME makes them, behind a tag built from the count. */
function streamingMp3(
  encoder: LameEncoder,
  stream: StemStreamOptions,
  opts: { sampleRate: number; channels: 1 | 2; vbrQuality: number | undefined },
): StemEncoder {
  const tagOptions = { samples: stream.totalSamples, sampleRate: opts.sampleRate, vbrQuality: opts.vbrQuality };
  /** Until the first frame: whether the tag could be built from the count; null = collect (the encoder resamples). */
  let started = false;
  let collected: ByteSink | null = null;
  let samples = 0;
  const out = (bytes: Uint8Array): void => {
    if (bytes.length === 0) return;
    if (!started) {
      started = true;
      const tag = streamingInfoTag(bytes, tagOptions);
      if (tag) stream.onBytes(tag);
      else if (stream.totalSamples > 0) collected = new ByteSink();
    }
    if (collected) collected.push(bytes);
    else stream.onBytes(bytes);
  };
  return {
    encode(chs) {
      if (chs[0].length === 0) return;
      samples += chs[0].length;
      if (samples > stream.totalSamples) throw new RangeError(`fed ${samples} samples to an MP3 stream announced as ${stream.totalSamples}`);
      out(encoder.encode(chs.slice(0, opts.channels)));
    },
    finish() {
      if (samples !== stream.totalSamples) throw new RangeError(`fed ${samples} samples to an MP3 stream announced as ${stream.totalSamples}`);
      out(encoder.finalize());
      const whole: ByteSink | null = collected;
      if (whole) stream.onBytes(withInfoTag(whole.concat(), tagOptions));
      return new Uint8Array(0);
    },
  };
}

/** Encodes whole channels (1 or 2) to one MP3 file. */
export async function encodeMp3(
  channels: Float32Array[],
  sampleRate: number,
  opts: Mp3Quality = DEFAULT_MP3,
): Promise<Uint8Array> {
  if (channels.length < 1 || channels.length > 2) throw new RangeError('encodeMp3 takes 1 or 2 channels');
  const enc = await createMp3StreamEncoder(sampleRate, channels.length as 1 | 2, opts);
  // Feed in slices so the wasm heap stays small for long inputs.
  const step = 1 << 16;
  for (let i = 0; i < channels[0].length; i += step) {
    enc.encode(channels.map((c) => c.subarray(i, i + step)));
  }
  return enc.finish();
}

/**
 * The encoder of an output format, from its `encoder` in FORMAT_INFO: an MP3 format with a fixed
 * bitrate is CBR at it, one without takes `vbr` (the configured MP3 setting, default VBR quality 2);
 * `wav` and `flac` are 24-bit.
 */
export async function createStemEncoder(format: OutputFormat, sampleRate: number, channels: 1 | 2, vbr: Mp3Quality = DEFAULT_MP3, stream?: StemStreamOptions): Promise<StemEncoder> {
  const spec = FORMAT_INFO[format].encoder;
  switch (spec.codec) {
    case 'mp3':
      return createMp3StreamEncoder(sampleRate, channels, mp3QualityOf(spec, vbr), stream);
    case 'wav':
      return createWavStreamEncoder(sampleRate, channels, stream);
    case 'flac':
      return createFlacStreamEncoder(sampleRate, channels, stream ?? {});
  }
}

export { createWavStreamEncoder, readWav24, wavFrames, wavHeader, WAV_HEADER_BYTES, } from './wav.ts';
export { createFlacStreamEncoder, FLAC_BLOCK, type FlacStreamOptions } from './flac.ts';
export { toPcm24, fromPcm24, PCM24_MAX, PCM24_MIN } from './pcm24.ts';
export { withInfoTag, streamingInfoTag, lameFrameCount, infoTagSamples, LAME_ENCODER_DELAY, crc16 } from './mp3-info-tag.ts';
export { createHeadLastEncoder, type HeadLastEncoder } from './head-last.ts';
export { InfoTagBuilder } from './mp3-info-tag.ts';
