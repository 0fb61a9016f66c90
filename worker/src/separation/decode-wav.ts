import type { WavInfo } from '@msaas/common';
import type { BlockSource, DecodedBlock } from './decode-stream.ts';

/** Sample frames converted per step. */
const FRAMES_PER_BLOCK = 16384;

/** A WAV's bytes: the whole file, or spans of it read as needed (the stored upload, upload-source.ts). */
export type WavBytes = Uint8Array | { read(start: number, end: number): Promise<Uint8Array> };

/** WAV samples (integer PCM or float, as parseWav found them) to float, a block at a time. */
export function wavSource(src: WavBytes, info: WavInfo): BlockSource {
  const { channels, blockAlign, bitsPerSample, encoding, sampleRate } = info;
  const step = bitsPerSample / 8;
  let frame = 0;
  /** Sample `at` (a byte offset into `bytes`) as float. */
  const sampleOf = (bytes: Uint8Array, view: DataView, at: number): number => {
    if (encoding === 'float') {
      const v = bitsPerSample === 32 ? view.getFloat32(at, true) : view.getFloat64(at, true);
      return Number.isFinite(v) ? v : 0; // a NaN/Inf sample would poison the whole chunk's STFT
    }
    switch (bitsPerSample) {
      case 8:
        return (bytes[at]! - 128) / 128;
      case 16:
        return view.getInt16(at, true) / 32768;
      case 24:
        return ((bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) << 8 >> 8) / 8388608;
      default:
        return view.getInt32(at, true) / 2147483648;
    }
  };
  return {
    async next(): Promise<DecodedBlock | null> {
      if (frame >= info.frames) return null;
      const n = Math.min(FRAMES_PER_BLOCK, info.frames - frame);
      const start = info.dataStart + frame * blockAlign;
      const bytes = src instanceof Uint8Array ? src.subarray(start, start + n * blockAlign) : await src.read(start, start + n * blockAlign);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = Array.from({ length: channels }, () => new Float32Array(n));
      for (let i = 0, at = 0; i < n; i++, at += blockAlign) {
        for (let c = 0; c < channels; c++) out[c]![i] = sampleOf(bytes, view, at + c * step);
      }
      frame += n;
      return { channelData: out, sampleRate };
    },
    close() {},
  };
}
