import { parseFrameHeader, sideInfoBytes, type FrameHeader } from '../mpeg-frames.ts';

/**
 * The Xing/Info + LAME header frame that LAME's own front end writes at the start of a file and
 * the wasm encoder (a bare libmp3lame) does not. Without it a decoder cannot know the encoder's
 * delay and padding, so every stem came out 1,105 samples (25 ms) late and up to two frames long
 * against the mix it was separated from; and a VBR file had no frame count or seek table, so
 * players guessed its duration from the first frame's bitrate. With it, gapless decoders (mpg123,
 * FFmpeg and the browsers built on it) return exactly the samples that were encoded.
 *
 * Layout (MPEG-1 stereo offsets): frame header (4) | side info, zero (32) | "Xing"/"Info" (4) |
 * flags (4) | frames (4) | bytes (4) | seek table (100) | quality (4) | LAME extension (36).
 */

/**
 * LAME's encoder delay as written in the tag. Decoders add their own 529 samples to it: a stream
 * without the tag decodes 576 + 529 = 1,105 samples late.
 */
export const LAME_ENCODER_DELAY = 576;

const XING_FLAGS = 0x0f; // frames | bytes | seek table | quality
const XING_BYTES = 120;
const LAME_BYTES = 36;

export interface InfoTagOptions {
  /** Samples per channel that went into the encoder. */
  samples: number;
  /** Their sample rate. LAME resamples on its own for low bitrates (e.g. 32 kbps → 22.05 kHz). */
  sampleRate: number;
  /** LAME VBR quality 0..9 for a VBR stream ("Xing" tag, quality recorded); absent for CBR ("Info"). */
  vbrQuality?: number;
}

const CRC16_TABLE = Uint16Array.from({ length: 256 }, (_, byte) => {
  let crc = byte;
  for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  return crc;
});

/** CRC-16/ARC (polynomial 0x8005 reflected, initial 0), the CRC of the LAME tag and of the music. */
export function crc16(bytes: Uint8Array, crc = 0): number {
  for (let i = 0; i < bytes.length; i++) crc = (crc >>> 8) ^ CRC16_TABLE[(crc ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** Offsets of the frames of a bare encoder output (no tags), which must be frames end to end. */
function frameOffsets(mp3: Uint8Array): { offsets: number[]; first: FrameHeader } {
  const offsets: number[] = [];
  let first: FrameHeader | null = null;
  for (let pos = 0; pos < mp3.length; ) {
    const h = parseFrameHeader(mp3, pos);
    if (!h || h.layer !== 3) throw new Error(`encoder output is not a chain of MP3 frames at byte ${pos}`);
    first ??= h;
    offsets.push(pos);
    pos += h.length;
  }
  if (!first) throw new Error('encoder output holds no frames');
  return { offsets, first };
}

/**
 * A header for the tag frame: the stream's first header with the smallest bitrate whose frame
 * holds the tag, no padding and no CRC. Bitrate indexes 1..14 grow with the bitrate.
 */
function tagFrameHeader(mp3: Uint8Array, first: FrameHeader): { header: Uint8Array; length: number } {
  const need = 4 + sideInfoBytes(first) + XING_BYTES + LAME_BYTES;
  const header = mp3.slice(0, 4);
  header[1] |= 1; // protection bit set = no CRC
  for (let index = 1; index <= 14; index++) {
    header[2] = (index << 4) | (header[2]! & 0x0c); // keep the sample-rate bits, clear padding and private
    const h = parseFrameHeader(header, 0);
    if (h && h.length >= need) return { header, length: h.length };
  }
  throw new Error('no bitrate gives a frame large enough for the Info tag');
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** Source sample-rate code of the LAME tag's misc byte (bits 6–7). */
function sourceRateCode(sampleRate: number): number {
  if (sampleRate <= 32000) return 0;
  if (sampleRate <= 44100) return 1;
  if (sampleRate <= 48000) return 2;
  return 3;
}

/**
 * Returns `mp3` (a bare LAME stream of `opts.samples` samples per channel) with a Xing/Info + LAME
 * frame in front that records its frame count, byte count, seek table, encoder delay and padding.
 */
export function withInfoTag(mp3: Uint8Array, opts: InfoTagOptions): Uint8Array {
  const { offsets, first } = frameOffsets(mp3);
  const frames = offsets.length;
  const encoded = Math.round((opts.samples * first.sampleRate) / opts.sampleRate);
  const padding = frames * first.samples - LAME_ENCODER_DELAY - encoded;
  if (padding < 0 || padding > 0xfff) {
    throw new Error(`${encoded} samples in ${frames} frames leave a padding of ${padding}, outside 0..4095`);
  }
  const vbr = opts.vbrQuality !== undefined;
  const { header, length } = tagFrameHeader(mp3, first);
  const total = length + mp3.length;
  const out = new Uint8Array(total);
  out.set(header, 0);
  out.set(mp3, length);

  const x = 4 + sideInfoBytes(first);
  out.set(new TextEncoder().encode(vbr ? 'Xing' : 'Info'), x);
  writeU32(out, x + 4, XING_FLAGS);
  writeU32(out, x + 8, frames);
  writeU32(out, x + 12, total);
  for (let i = 0; i < 100; i++) {
    const pos = length + offsets[Math.floor((i * frames) / 100)]!;
    out[x + 16 + i] = Math.min(255, Math.floor((pos * 256) / total));
  }
  writeU32(out, x + 116, opts.vbrQuality === undefined ? 0 : 100 - 10 * opts.vbrQuality);

  const l = x + XING_BYTES;
  out.set(new TextEncoder().encode('LAME3.100'), l);
  out[l + 9] = vbr ? 4 : 1; // tag revision 0 | VBR method: 4 = VBR mtrh (LAME's default), 1 = CBR
  // l+10 lowpass, l+11..18 ReplayGain, l+19 flags/ATH, l+20 bitrate: 0 = not recorded
  out[l + 21] = LAME_ENCODER_DELAY >> 4;
  out[l + 22] = ((LAME_ENCODER_DELAY & 0x0f) << 4) | (padding >> 8);
  out[l + 23] = padding & 0xff;
  out[l + 24] = sourceRateCode(opts.sampleRate) << 6;
  writeU32(out, l + 28, total);
  const musicCrc = crc16(mp3);
  out[l + 32] = musicCrc >> 8;
  out[l + 33] = musicCrc & 0xff;
  const tagCrc = crc16(out.subarray(0, l + 34));
  out[l + 34] = tagCrc >> 8;
  out[l + 35] = tagCrc & 0xff;
  return out;
}

/**
 * Samples per channel of an MP3 that starts with the Info/Xing + LAME tag this module writes (the
 * stems): frames × samples per frame − encoder delay − padding. Null without such a tag. `head`
 * needs only the first frame.
 */
export function infoTagSamples(head: Uint8Array): number | null {
  const first = parseFrameHeader(head, 0);
  if (!first || first.layer !== 3) return null;
  const x = 4 + sideInfoBytes(first);
  if (head.length < x + XING_BYTES + LAME_BYTES) return null;
  const tag = String.fromCharCode(...head.subarray(x, x + 4));
  if (tag !== 'Xing' && tag !== 'Info') return null;
  const u32 = (at: number): number => ((head[at]! << 24) | (head[at + 1]! << 16) | (head[at + 2]! << 8) | head[at + 3]!) >>> 0;
  const frames = u32(x + 8);
  const l = x + XING_BYTES;
  const delay = (head[l + 21]! << 4) | (head[l + 22]! >> 4);
  const padding = ((head[l + 22]! & 0x0f) << 8) | head[l + 23]!;
  return frames * first.samples - delay - padding;
}
