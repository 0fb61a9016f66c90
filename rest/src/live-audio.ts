import { createMp3Encoder } from 'wasm-media-encoders';
import { DEFAULT_MP3, createMp3StreamEncoder, type Mp3Quality } from '@msaas/common/audio-encode/index';
import { INSTRUMENTAL_PARTS, TRACKS, streamToBuffer, type ObjectStore, type Stem } from '@msaas/common';
import type { Stereo } from './stem-decode.ts';

/** The pieces' sample rate (the model's). */
export const LIVE_SAMPLE_RATE = 44_100;
/** Bytes per frame of a piece: four model stems × two channels × float32. */
const PIECE_FRAME_BYTES = TRACKS.length * 2 * 4;

/**
 * One MP3 encoder per live stream, fed the stem's final samples in song order, so piece boundaries
 * are invisible: one continuous LAME bitstream, no gaps. Its bytes leave as LAME makes them.
 * When the song's length is known before the first byte goes out (a short song, a stream that
 * starts late, a done job), the stream opens with the gapless Info tag built from that count (the
 * stem encoder's streaming mode, common/src/audio-encode): decoders then trim LAME's delay and
 * padding and the stream decodes to exactly the song. Otherwise (a long song still being decoded by
 * the worker) there can be no tag, and a decoder keeps the codecs' delay: the audio starts
 * LIVE_MP3_DELAY frames (25 ms) late and ends up to a frame long.
 */
export interface LiveMp3Encoder {
  /** Whether the stream carries the Info tag (its length announced up front). */
  readonly tagged: boolean;
  /** MP3 bytes for these frames (possibly none yet: LAME holds up to about a frame). */
  encode(stereo: Stereo): Uint8Array;
  /** The last frames' bytes (a tagged stream short of its announced length is completed with silence). */
  finish(): Uint8Array;
}

/** Frames a decoder without the Info tag outputs before the song's first sample (LAME's 576 + the decoder's 529). */
export const LIVE_MP3_DELAY = 576 + 529;

/** Whether LAME resamples at this quality (VBR 8–9): the tag cannot be built up front then. */
const resamples = (quality: Mp3Quality): boolean => 'vbrQuality' in quality && quality.vbrQuality !== undefined && quality.vbrQuality >= 8;

export async function createLiveMp3Encoder(quality: Mp3Quality = DEFAULT_MP3, totalFrames: number | null = null): Promise<LiveMp3Encoder> {
  if (totalFrames !== null && totalFrames > 0 && !resamples(quality)) return taggedEncoder(quality, totalFrames);
  const encoder = await createMp3Encoder();
  if ('bitrate' in quality && quality.bitrate !== undefined) {
    encoder.configure({ sampleRate: LIVE_SAMPLE_RATE, channels: 2, bitrate: quality.bitrate as 320 });
  } else {
    const q = 'vbrQuality' in quality && quality.vbrQuality !== undefined ? quality.vbrQuality : 2;
    encoder.configure({ sampleRate: LIVE_SAMPLE_RATE, channels: 2, vbrQuality: q });
  }
  return {
    tagged: false,
    // The encoder's output is a view into its memory, valid until its next call: copy it.
    encode: (stereo) => (stereo[0].length === 0 ? new Uint8Array(0) : encoder.encode(stereo).slice()),
    finish: () => encoder.finalize().slice(),
  };
}

/** The stem encoder streaming with its length announced: exactly `total` frames go in (more are dropped, fewer padded with silence). */
async function taggedEncoder(quality: Mp3Quality, total: number): Promise<LiveMp3Encoder> {
  let out: Uint8Array[] = [];
  const enc = await createMp3StreamEncoder(LIVE_SAMPLE_RATE, 2, quality, { totalSamples: total, onBytes: (b) => void out.push(b.slice()) });
  let fed = 0;
  const take = (): Uint8Array => {
    const bytes = out.length === 1 ? out[0]! : Buffer.concat(out);
    out = [];
    return bytes;
  };
  return {
    tagged: true,
    encode(stereo) {
      const n = Math.min(stereo[0].length, total - fed);
      if (n > 0) enc.encode([stereo[0].subarray(0, n), stereo[1].subarray(0, n)]);
      fed += n;
      return take();
    },
    finish() {
      if (fed < total) enc.encode([new Float32Array(total - fed), new Float32Array(total - fed)]);
      fed = total;
      enc.finish();
      return take();
    },
  };
}

/** The model stems a live stem is made of: itself, or instrumental's drums, bass, other (summed in that order, as the engine sums them). */
export function partsOf(stem: Stem): readonly number[] {
  const parts = stem === 'instrumental' ? INSTRUMENTAL_PARTS : [stem];
  return parts.map((t) => TRACKS.indexOf(t as (typeof TRACKS)[number]));
}

/** Frames in a piece of `bytes` bytes. */
export const pieceFrames = (bytes: number): number => bytes / PIECE_FRAME_BYTES;

/**
 * Frames [from, to) of one piece (`n` frames; offsets relative to the piece's start) of the model
 * stems `parts`, summed: two ranged reads per stem (left, then right channel — the piece is planar),
 * so a block costs its own size, never the piece's.
 */
export async function readPieceBlock(store: ObjectStore, hash: string, seq: number, n: number, parts: readonly number[], from: number, to: number): Promise<Stereo> {
  const frames = to - from;
  const read = async (k: number, ch: 0 | 1): Promise<Float32Array> => {
    const start = (k * 2 + ch) * n * 4 + from * 4;
    const bytes = await streamToBuffer(await store.getPiece(hash, seq, { start, end: start + frames * 4 - 1 }));
    if (bytes.length !== frames * 4) throw new Error(`piece ${seq} of ${hash}: read ${bytes.length} bytes of ${frames * 4}`);
    const samples = new Float32Array(frames);
    // Little-endian float32 (read one by one: the buffer need not be 4-byte aligned).
    for (let j = 0; j < frames; j++) samples[j] = bytes.readFloatLE(j * 4);
    return samples;
  };
  const out: Stereo = [new Float32Array(frames), new Float32Array(frames)];
  for (const ch of [0, 1] as const) {
    const stems = await Promise.all(parts.map((k) => read(k, ch)));
    // In the parts' order, as the engine sums instrumental (float32 after each addition).
    out[ch] = stems[0]!;
    for (const more of stems.slice(1)) for (let j = 0; j < frames; j++) out[ch][j] = out[ch][j]! + more[j]!;
  }
  return out;
}
