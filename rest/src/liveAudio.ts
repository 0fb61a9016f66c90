import { createMp3Encoder } from 'wasm-media-encoders';
import { DEFAULT_MP3, type Mp3Quality } from '@msaas/common/audio-encode/index';
import { INSTRUMENTAL_PARTS, TRACKS, streamToBuffer, type ObjectStore, type Stem } from '@msaas/common';
import type { Stereo } from './mixSources.ts';

/** The pieces' sample rate (the model's). */
export const LIVE_SAMPLE_RATE = 44_100;
/** Bytes per frame of a piece: four model stems × two channels × float32. */
const PIECE_FRAME_BYTES = TRACKS.length * 2 * 4;

/**
 * An MP3 encoder whose bytes leave as they are made (the stored stems' encoder collects them for
 * the Info tag, which needs the frame count): one LAME per live stream, fed the stem's final
 * samples in song order, so piece boundaries are invisible — one continuous bitstream, no gaps.
 * Without the Info tag a decoder keeps LAME's encoder delay (576 frames) and its own (529): the
 * live stream's audio starts ~25 ms late (LIVE_MP3_DELAY), which is inaudible to a listener.
 */
export interface LiveMp3Encoder {
  /** MP3 bytes for these frames (possibly none yet: LAME holds up to about a frame). */
  encode(stereo: Stereo): Uint8Array;
  /** The last frames' bytes. */
  finish(): Uint8Array;
}

/** Frames a decoder without the Info tag outputs before the song's first sample (LAME's 576 + the decoder's 529). */
export const LIVE_MP3_DELAY = 576 + 529;

export async function createLiveMp3Encoder(quality: Mp3Quality = DEFAULT_MP3): Promise<LiveMp3Encoder> {
  const encoder = await createMp3Encoder();
  if ('bitrate' in quality && quality.bitrate !== undefined) {
    encoder.configure({ sampleRate: LIVE_SAMPLE_RATE, channels: 2, bitrate: quality.bitrate as 320 });
  } else {
    const q = 'vbrQuality' in quality && quality.vbrQuality !== undefined ? quality.vbrQuality : 2;
    encoder.configure({ sampleRate: LIVE_SAMPLE_RATE, channels: 2, vbrQuality: q });
  }
  return {
    // The encoder's output is a view into its memory, valid until its next call: copy it.
    encode: (stereo) => (stereo[0].length === 0 ? new Uint8Array(0) : encoder.encode(stereo).slice()),
    finish: () => encoder.finalize().slice(),
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
  const out: Stereo = [new Float32Array(frames), new Float32Array(frames)];
  for (const [i, k] of parts.entries()) {
    for (const ch of [0, 1] as const) {
      const start = (k * 2 + ch) * n * 4 + from * 4;
      const bytes = await streamToBuffer(await store.getPiece(hash, seq, { start, end: start + frames * 4 - 1 }));
      if (bytes.length !== frames * 4) throw new Error(`piece ${seq} of ${hash}: read ${bytes.length} bytes of ${frames * 4}`);
      const samples = new Float32Array(frames);
      // Little-endian float32 (copied: the buffer need not be 4-byte aligned).
      for (let j = 0; j < frames; j++) samples[j] = bytes.readFloatLE(j * 4);
      if (i === 0) out[ch].set(samples);
      else {
        const acc = out[ch];
        for (let j = 0; j < frames; j++) acc[j] = acc[j]! + samples[j]!;
      }
    }
  }
  return out;
}
