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

const XING_FRAMES = 0x01;
const XING_BYTES_FLAG = 0x02;
const XING_TOC = 0x04;
const XING_QUALITY = 0x08;
const XING_FLAGS = XING_FRAMES | XING_BYTES_FLAG | XING_TOC | XING_QUALITY;
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
function tagFrameHeader(firstBytes: Uint8Array, first: FrameHeader): { header: Uint8Array; length: number } {
  const need = 4 + sideInfoBytes(first) + XING_BYTES + LAME_BYTES;
  const header = firstBytes.slice(0, 4);
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
  const tag = infoTagFrame({ firstBytes: mp3.subarray(0, 4), first, offsets, musicBytes: mp3.length, musicCrc: crc16(mp3) }, opts);
  const out = new Uint8Array(tag.length + mp3.length);
  out.set(tag, 0);
  out.set(mp3, tag.length);
  return out;
}

/** What the tag records of the bare stream it goes in front of. */
interface MusicFacts {
  /** The stream's first 4 bytes (its first frame header). */
  firstBytes: Uint8Array;
  first: FrameHeader;
  /** Byte offset of every frame in the bare stream. */
  offsets: ArrayLike<number>;
  /** Null for a tag written before the stream (streamingInfoTag): no byte count, seek table or music CRC then, and `frames` says the count. */
  musicBytes: number | null;
  musicCrc: number;
  frames?: number;
}

/** The Xing/Info + LAME tag frame alone: the bytes withInfoTag puts in front of the stream. */
function infoTagFrame(music: MusicFacts, opts: InfoTagOptions): Uint8Array {
  const { first, offsets } = music;
  const frames = music.frames ?? offsets.length;
  const encoded = Math.round((opts.samples * first.sampleRate) / opts.sampleRate);
  const padding = frames * first.samples - LAME_ENCODER_DELAY - encoded;
  if (padding < 0 || padding > 0xfff) {
    throw new Error(`${encoded} samples in ${frames} frames leave a padding of ${padding}, outside 0..4095`);
  }
  const vbr = opts.vbrQuality !== undefined;
  const { header, length } = tagFrameHeader(music.firstBytes, first);
  const total = music.musicBytes === null ? null : length + music.musicBytes;
  const out = new Uint8Array(length);
  out.set(header, 0);

  const x = 4 + sideInfoBytes(first);
  out.set(new TextEncoder().encode(vbr ? 'Xing' : 'Info'), x);
  writeU32(out, x + 4, total === null ? XING_FRAMES | XING_QUALITY : XING_FLAGS);
  writeU32(out, x + 8, frames);
  let q = x + 12; // the quality field follows the fields present
  if (total !== null) {
    writeU32(out, x + 12, total);
    for (let i = 0; i < 100; i++) {
      const pos = length + offsets[Math.floor((i * frames) / 100)]!;
      out[x + 16 + i] = Math.min(255, Math.floor((pos * 256) / total));
    }
    q = x + 116;
  }
  writeU32(out, q, opts.vbrQuality === undefined ? 0 : 100 - 10 * opts.vbrQuality);

  const l = q + 4;
  out.set(new TextEncoder().encode('LAME3.100'), l);
  out[l + 9] = vbr ? 4 : 1; // tag revision 0 | VBR method: 4 = VBR mtrh (LAME's default), 1 = CBR
  // l+10 lowpass, l+11..18 ReplayGain, l+19 flags/ATH, l+20 bitrate: 0 = not recorded
  out[l + 21] = LAME_ENCODER_DELAY >> 4;
  out[l + 22] = ((LAME_ENCODER_DELAY & 0x0f) << 4) | (padding >> 8);
  out[l + 23] = padding & 0xff;
  out[l + 24] = sourceRateCode(opts.sampleRate) << 6;
  writeU32(out, l + 28, total ?? 0);
  out[l + 32] = music.musicCrc >> 8;
  out[l + 33] = music.musicCrc & 0xff;
  const tagCrc = crc16(out.subarray(0, l + 34));
  out[l + 34] = tagCrc >> 8;
  out[l + 35] = tagCrc & 0xff;
  return out;
}

/**
 * LAME's frame count for `samples` samples per channel when it does not resample (its output rate
 * is its input rate): one frame per frame's worth of samples begun, plus the one its flush adds
 * for the encoder delay. Measured over VBR V0–V6, CBR 128 and 320 kbps at 44.1 kHz
 * (rest/test/stem-stream.test.ts); with resampling it differs, and streamingInfoTag declines.
 */
export function lameFrameCount(samples: number, samplesPerFrame: number): number {
  return Math.ceil(samples / samplesPerFrame) + 1;
}

/**
 * The Xing/Info + LAME frame for a stream not yet encoded (rest streams a mix to its client as LAME
 * makes it), from the encoder's first output and the sample count known in advance: the frame
 * count and padding are LAME's (lameFrameCount), so a gapless decoder trims exactly as with
 * withInfoTag. The byte count, seek table and music CRC need the whole stream and are left out
 * (Xing flags: frames and quality; music length and CRC 0). Null when the encoder resamples (the
 * count is not known then) or there are no samples.
 */
export function streamingInfoTag(firstFrame: Uint8Array, opts: InfoTagOptions): Uint8Array | null {
  const first = parseFrameHeader(firstFrame, 0);
  if (!first || first.layer !== 3) throw new Error('encoder output does not start with an MP3 frame');
  if (first.sampleRate !== opts.sampleRate || opts.samples === 0) return null;
  const frames = lameFrameCount(opts.samples, first.samples);
  return infoTagFrame({ firstBytes: firstFrame.subarray(0, 4), first, offsets: [], musicBytes: null, musicCrc: 0, frames }, opts);
}

/**
 * The tag of a bare LAME stream that goes out piece by piece (the worker streams stems to the
 * store): `add` each piece of the stream as it is made, `tag` at the end gives the frame withInfoTag
 * would put in front of the whole. Holds the frame offsets (4 bytes a frame: 150 kB for 15 min).
 */
export class InfoTagBuilder {
  private offsets = new Uint32Array(1024);
  private frames = 0;
  private seen = 0;
  private nextFrame = 0;
  private crc = 0;
  /** The last up to 3 bytes seen: a frame header may straddle two pieces. */
  private tail = new Uint8Array(0);
  private first: { bytes: Uint8Array; header: FrameHeader } | null = null;

  get bytes(): number {
    return this.seen;
  }

  add(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.crc = crc16(piece, this.crc);
    const base = this.seen;
    this.seen += piece.length;
    const tailStart = base - this.tail.length;
    const at = (abs: number): number => (abs >= base ? piece[abs - base]! : this.tail[abs - tailStart]!);
    const hdr = new Uint8Array(4);
    while (this.nextFrame + 4 <= this.seen) {
      for (let k = 0; k < 4; k++) hdr[k] = at(this.nextFrame + k);
      const h = parseFrameHeader(hdr, 0);
      if (!h || h.layer !== 3) throw new Error(`encoder output is not a chain of MP3 frames at byte ${this.nextFrame}`);
      this.first ??= { bytes: hdr.slice(), header: h };
      if (this.frames === this.offsets.length) {
        const grown = new Uint32Array(this.offsets.length * 2);
        grown.set(this.offsets);
        this.offsets = grown;
      }
      this.offsets[this.frames++] = this.nextFrame;
      this.nextFrame += h.length;
    }
    const keep = Math.min(3, this.seen);
    const joined = new Uint8Array(keep);
    for (let k = 0; k < keep; k++) joined[k] = at(this.seen - keep + k);
    this.tail = joined;
  }

  /** The tag frame for the stream added so far, which must end on a frame boundary. */
  tag(opts: InfoTagOptions): Uint8Array {
    if (!this.first) throw new Error('encoder output holds no frames');
    if (this.nextFrame !== this.seen) throw new Error(`encoder output ends inside a frame (${this.seen} of ${this.nextFrame} bytes)`);
    return infoTagFrame(
      { firstBytes: this.first.bytes, first: this.first.header, offsets: this.offsets.subarray(0, this.frames), musicBytes: this.seen, musicCrc: this.crc },
      opts,
    );
  }
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
  if (head.length < x + 8) return null;
  const tag = String.fromCharCode(...head.subarray(x, x + 4));
  if (tag !== 'Xing' && tag !== 'Info') return null;
  const u32 = (at: number): number => ((head[at]! << 24) | (head[at + 1]! << 16) | (head[at + 2]! << 8) | head[at + 3]!) >>> 0;
  const flags = u32(x + 4);
  if (!(flags & XING_FRAMES)) return null;
  const frames = u32(x + 8);
  // the fields present follow in order: frames, bytes, seek table, quality; then the LAME extension
  const l = x + 12 + (flags & XING_BYTES_FLAG ? 4 : 0) + (flags & XING_TOC ? 100 : 0) + (flags & XING_QUALITY ? 4 : 0);
  if (head.length < l + LAME_BYTES || String.fromCharCode(...head.subarray(l, l + 4)) !== 'LAME') return null;
  const delay = (head[l + 21]! << 4) | (head[l + 22]! >> 4);
  const padding = ((head[l + 22]! & 0x0f) << 8) | head[l + 23]!;
  return frames * first.samples - delay - padding;
}
