import { ByteSink, toPcm24 } from './pcm24.ts';
import type { StemEncoder } from './stem-encoder.ts';

export const WAV_HEADER_BYTES = 44;

export function wavHeader(sampleRate: number, channels: number, frames: number): Uint8Array {
  const blockAlign = channels * 3;
  const dataBytes = frames * blockAlign;
  const header = new Uint8Array(WAV_HEADER_BYTES);
  const view = new DataView(header.buffer);
  const ascii = (at: number, s: string): void => {
    for (let i = 0; i < s.length; i++) header[at + i] = s.charCodeAt(i);
  };
  ascii(0, 'RIFF');
  view.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, 24, true);
  ascii(36, 'data');
  view.setUint32(40, dataBytes, true);
  return header;
}

/** Interleaved little-endian 24-bit sample data of `channels` (the WAV data chunk's bytes). */
export function wavFrames(chs: readonly Float32Array[]): Uint8Array {
  const n = chs[0]!.length;
  const channels = chs.length;
  const out = new Uint8Array(n * channels * 3);
  let o = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) {
      const v = toPcm24(chs[c]![i]!);
      out[o++] = v & 0xff;
      out[o++] = (v >> 8) & 0xff;
      out[o++] = (v >> 16) & 0xff;
    }
  }
  return out;
}

/**
 * A 24-bit PCM WAV writer fed chunk by chunk: the sample data is kept as it comes and the
 * 44-byte RIFF header (whose sizes need the total) goes in front at the end. Pure: no I/O.
 * With `stream`, the header (sized for `totalSamples`) and then each chunk's frames go to `onBytes`
 * as they are made, and finish() returns an empty array (and throws unless exactly that many were fed).
 */
export function createWavStreamEncoder(sampleRate: number, channels: 1 | 2, stream?: { onBytes: (bytes: Uint8Array) => void; totalSamples: number }): StemEncoder {
  const sink = new ByteSink();
  let frames = 0;
  if (stream) {
    let started = false;
    const start = (): void => {
      if (!started) stream.onBytes(wavHeader(sampleRate, channels, stream.totalSamples));
      started = true;
    };
    const check = (): void => {
      if (frames > stream.totalSamples) throw new RangeError(`fed ${frames} samples to a WAV stream announced as ${stream.totalSamples}`);
    };
    return {
      encode(chs) {
        const n = chs[0]!.length;
        if (n === 0) return;
        frames += n;
        check();
        start();
        stream.onBytes(wavFrames(chs.slice(0, channels)));
      },
      finish() {
        check();
        if (frames !== stream.totalSamples) throw new RangeError(`fed ${frames} samples to a WAV stream announced as ${stream.totalSamples}`);
        start();
        return new Uint8Array(0);
      },
    };
  }
  return {
    encode(chs) {
      const n = chs[0]!.length;
      if (n === 0) return;
      sink.push(wavFrames(chs.slice(0, channels)), false);
      frames += n;
    },
    finish() {
      return sink.concat(wavHeader(sampleRate, channels, frames));
    },
  };
}

/** Reads a 24-bit PCM WAV written by this module back to integer samples per channel (tests, mix). */
export function readWav24(bytes: Uint8Array): { sampleRate: number; channels: Int32Array[] } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number): string => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let pos = 12;
  let sampleRate = 0;
  let count = 0;
  let bits = 0;
  while (pos + 8 <= bytes.length) {
    const id = tag(pos);
    const size = view.getUint32(pos + 4, true);
    if (id === 'fmt ') {
      count = view.getUint16(pos + 10, true);
      sampleRate = view.getUint32(pos + 12, true);
      bits = view.getUint16(pos + 22, true);
    } else if (id === 'data') {
      if (bits !== 24) throw new Error(`expected 24-bit samples, got ${bits}`);
      const frames = Math.floor(Math.min(size, bytes.length - pos - 8) / (3 * count));
      const channels = Array.from({ length: count }, () => new Int32Array(frames));
      let o = pos + 8;
      for (let i = 0; i < frames; i++) {
        for (let c = 0; c < count; c++) {
          channels[c]![i] = ((bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16)) << 8) >> 8;
          o += 3;
        }
      }
      return { sampleRate, channels };
    }
    pos += 8 + size + (size & 1);
  }
  throw new Error('no data chunk');
}
