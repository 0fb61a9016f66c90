import type { Readable } from 'node:stream';
import { MPEGDecoder } from 'mpg123-decoder';
import { FLACDecoder } from '@wasm-audio-decoders/flac';
import { WAV_HEADER_BYTES, infoTagSamples } from '@msaas/common/audio-encode/index';
import { INSTRUMENTAL_PARTS, orderedStems, streamToBuffer, type Extension, type ObjectStore, type Stem } from '@msaas/common';

/**
 * The stems a mix of a song sums, from those it has: stems that do not overlap, so nothing is
 * counted twice. `instrumental` is drums + bass + other: with all three of those it is left out (the
 * parts give finer control), without them it stands for them (a `vocals,instrumental` song mixes
 * as a karaoke pair). Empty when the song has none.
 */
export function mixStems(have: readonly Stem[]): Stem[] {
  const parts = INSTRUMENTAL_PARTS.filter((p) => have.includes(p));
  const useInstrumental = have.includes('instrumental') && parts.length < INSTRUMENTAL_PARTS.length;
  return orderedStems(have.filter((s) => (s === 'instrumental' ? useInstrumental : !(useInstrumental && parts.includes(s as never)))));
}

/** Stereo float samples of one piece of a stem. */
export type Stereo = [Float32Array, Float32Array];

/** The libFLAC decoder's floats are its integers / (2^23 − 1); ours (the stems' writer) are / 2^23. */
const FLAC_TO_OURS = 8_388_607 / 8_388_608;
const MP3_FEED = 32 * 1024;

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
        for (let i = 0; i < bytes.length; i += MP3_FEED) {
          const out = decoder.decode(bytes.subarray(i, i + MP3_FEED));
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
        const out = await decoder.decode(chunk as Uint8Array);
        if (out.samplesDecoded > 0) yield scaled(out.channelData);
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

/** Samples per channel of a stored stem, from its header (WAV size, FLAC STREAMINFO, MP3 Info tag); null if unknown. */
export async function stemSamples(store: ObjectStore, hash: string, stem: Stem, ext: Extension): Promise<number | null> {
  if (ext === 'wav') {
    const info = await store.statStem(hash, stem, ext);
    return info ? Math.floor((info.size - WAV_HEADER_BYTES) / 6) : null;
  }
  const head = await streamToBuffer(await store.getStem(hash, stem, { start: 0, end: ext === 'flac' ? 41 : 1023 }, ext));
  if (ext === 'flac') {
    if (head.length < 42 || head.toString('latin1', 0, 4) !== 'fLaC') return null;
    // STREAMINFO bytes 8..: total samples are the low 36 bits of bytes 21..25 (after the 4-byte marker and block header)
    const hi = head[21]! & 0x0f;
    return hi * 2 ** 32 + head.readUInt32BE(22);
  }
  return infoTagSamples(head);
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
