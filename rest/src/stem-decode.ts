import type { Readable } from 'node:stream';
import { MPEGDecoder } from 'mpg123-decoder';
import { FLACDecoder } from '@wasm-audio-decoders/flac';
import { WAV_HEADER_BYTES } from '@msaas/common/audio-encode/index';
import type { Extension } from '@msaas/common';

// Decoding stored stems: the mix threads (mix-render.ts) load this module, so it imports no more
// than the decoders (the common package's index alone takes them ~0.7 s to load).

/** Stereo float samples of one piece of a stem. */
export type Stereo = [Float32Array, Float32Array];

/** The libFLAC decoder's floats are its integers / (2^23 − 1); ours (the stems' writer) are / 2^23. */
const FLAC_TO_OURS = 8_388_607 / 8_388_608;
/** Bytes handed to a decoder at a time: ~0.2 s of a 320 kb/s MP3, ~0.03 s of a 24-bit FLAC — one decode call stays short (a live stream's decodes run on the request thread). */
const FEED = 8 * 1024;

const stereo = (channels: Float32Array[]): Stereo => [channels[0]!, channels[1] ?? channels[0]!];

/**
 * A stored stem, decoded piece by piece as its object streams from the store: only the piece in
 * hand is in memory. MP3 through mpg123 (gapless: the Info tag's delay and padding are honoured),
 * FLAC through libFLAC, WAV (the stems' own 24-bit layout) read directly.
 */
export async function* decodeStem(stream: Readable, ext: Extension): AsyncGenerator<Stereo> {
  if (ext === 'mp3') {
    const decoder = new MPEGDecoder({ enableGapless: true });
    await decoder.ready;
    try {
      for await (const chunk of stream) {
        const bytes = chunk as Uint8Array;
        for (let i = 0; i < bytes.length; i += FEED) {
          const out = decoder.decode(bytes.subarray(i, i + FEED));
          if (out.samplesDecoded > 0) yield stereo(out.channelData);
        }
      }
    } finally {
      decoder.free();
    }
    return;
  }
  if (ext === 'flac') {
    const decoder = new FLACDecoder();
    await decoder.ready;
    try {
      const scaled = (channels: Float32Array[]): Stereo => {
        const [l, r] = stereo(channels);
        for (const ch of l === r ? [l] : [l, r]) for (let i = 0; i < ch.length; i++) ch[i] = ch[i]! * FLAC_TO_OURS;
        return [l, r];
      };
      for await (const chunk of stream) {
        const bytes = chunk as Uint8Array;
        for (let i = 0; i < bytes.length; i += FEED) {
          const out = await decoder.decode(bytes.subarray(i, i + FEED));
          if (out.samplesDecoded > 0) yield scaled(out.channelData);
        }
      }
      const rest = await decoder.flush();
      if (rest.samplesDecoded > 0) yield scaled(rest.channelData);
    } finally {
      decoder.free();
    }
    return;
  }
  // WAV: the 44-byte header, then interleaved 24-bit little-endian stereo frames.
  let skip = WAV_HEADER_BYTES;
  let carry = new Uint8Array(0);
  for await (const chunk of stream) {
    let bytes = chunk as Uint8Array;
    if (skip > 0) {
      const n = Math.min(skip, bytes.length);
      skip -= n;
      bytes = bytes.subarray(n);
    }
    if (carry.length > 0) {
      const joined = new Uint8Array(carry.length + bytes.length);
      joined.set(carry);
      joined.set(bytes, carry.length);
      bytes = joined;
    }
    const frames = Math.floor(bytes.length / 6);
    const l = new Float32Array(frames);
    const r = new Float32Array(frames);
    for (let i = 0, o = 0; i < frames; i++, o += 6) {
      l[i] = (((bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16)) << 8) >> 8) / 8_388_608;
      r[i] = (((bytes[o + 3]! | (bytes[o + 4]! << 8) | (bytes[o + 5]! << 16)) << 8) >> 8) / 8_388_608;
    }
    carry = bytes.slice(frames * 6);
    if (frames > 0) yield [l, r];
  }
}

/**
 * Pulls exactly `n` samples at a time from a stored stem as it streams from the store and decodes
 * (zeros once it runs out), adding them with `gain` into the mix buffers: the stems' decoders are
 * read in step, block by block. `destroy()` stops at once — the store stream is closed (its
 * connection released) and a read in progress ends in an error — and `close()` then lets the
 * decoder free its memory.
 */
export class StemPuller {
  private readonly source: AsyncGenerator<Stereo>;
  private pieces: Stereo[] = [];
  private offset = 0;
  private buffered = 0;
  private ended = false;

  constructor(
    private readonly stream: Readable,
    ext: Extension,
    readonly gain: number,
  ) {
    // A store stream that errors before the decoder reads it (or after destroy()) must not be an unhandled 'error'.
    stream.on('error', () => undefined);
    this.source = decodeStem(stream, ext);
  }

  async addInto(mix: Stereo, n: number): Promise<void> {
    while (this.buffered < n && !this.ended) {
      const next = await this.source.next();
      if (next.done) this.ended = true;
      else {
        this.pieces.push(next.value);
        this.buffered += next.value[0].length;
      }
    }
    let written = 0;
    while (written < n && this.pieces.length > 0) {
      const [l, r] = this.pieces[0]!;
      const take = Math.min(n - written, l.length - this.offset);
      for (let i = 0; i < take; i++) {
        mix[0][written + i] += this.gain * l[this.offset + i]!;
        mix[1][written + i] += this.gain * r[this.offset + i]!;
      }
      written += take;
      this.offset += take;
      this.buffered -= take;
      if (this.offset === l.length) {
        this.pieces.shift();
        this.offset = 0;
      }
    }
  }

  /** Stops reading the store now (idempotent, synchronous: safe from a 'close' handler). */
  destroy(): void {
    this.stream.destroy();
    this.pieces = [];
    this.buffered = 0;
  }

  /** Ends the decoder (freeing its memory) and the store stream; call once nothing awaits addInto. */
  async close(): Promise<void> {
    this.destroy();
    await this.source.return(undefined).catch(() => undefined);
  }
}
