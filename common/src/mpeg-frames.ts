import { AudioInputError } from './audio-input-error.ts';

/**
 * The one MPEG audio frame parser (Layers I–III, MPEG-1/2/2.5: what the worker's decoder decodes).
 * rest's upload sniff and the worker's frame scan both use it. The scan is a pass over the frame
 * headers, before any decoding: it tells whether the bytes are an MP3 at all, how long the audio
 * is (to refuse over-long songs before spending CPU on them, at submit and in the worker), and
 * which byte ranges hold frames (so the decoder is only fed audio, never tags or junk).
 */
export interface Mp3Scan {
  sampleRate: number;
  channels: 1 | 2;
  /** Audio frames found (a Xing/Info header frame included). */
  frames: number;
  /** Samples per channel the frames hold (before gapless trimming). */
  samples: number;
  durationSec: number;
  /** Contiguous runs of valid frames, as [start, end) byte offsets. */
  ranges: Array<[number, number]>;
  /** Bytes between frames that were neither frames nor tags. */
  junkBytes: number;
}

/** Junk tolerated between frames, as a fraction of the frame bytes (plus a small absolute allowance). */
const JUNK_FRACTION = 0.02;
const JUNK_ALLOWANCE = 4096;
/**
 * Runs of frames (each one a range kept for the decoder) a file may break into by losing sync: a
 * damaged MP3 loses it a few times; past this the ranges would cost more memory than the file.
 */
const MAX_RANGES = 4096;
/** Frames a Xing/Info header may promise beyond what is present before the file counts as truncated. */
const MISSING_FRAMES_TOLERATED = 1;

const BITRATES: Record<string, readonly number[]> = {
  // [version 1|2][layer 1..3], kbps by index 1..14
  '1-1': [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
  '1-2': [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
  '1-3': [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  '2-1': [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
  '2-2': [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  '2-3': [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
const SAMPLE_RATES: Record<number, readonly number[]> = {
  3: [44100, 48000, 32000], // MPEG-1
  2: [22050, 24000, 16000], // MPEG-2
  0: [11025, 12000, 8000], // MPEG-2.5
};

export interface FrameHeader {
  versionBits: number;
  layer: 1 | 2 | 3;
  sampleRate: number;
  channels: 1 | 2;
  length: number;
  samples: number;
}

/** Parses the 4-byte header at `pos`, or returns null when it is not a valid (non-free-format) header. */
export function parseFrameHeader(b: Uint8Array, pos: number): FrameHeader | null {
  if (pos + 4 > b.length) return null;
  const b1 = b[pos + 1], b2 = b[pos + 2], b3 = b[pos + 3];
  if (b[pos] !== 0xff || (b1 & 0xe0) !== 0xe0) return null;
  const versionBits = (b1 >> 3) & 3;
  const layerBits = (b1 >> 1) & 3;
  if (versionBits === 1 || layerBits === 0) return null;
  const layer = (4 - layerBits) as 1 | 2 | 3;
  const bitrateIndex = b2 >> 4;
  const srIndex = (b2 >> 2) & 3;
  if (bitrateIndex === 0 || bitrateIndex === 15 || srIndex === 3) return null;
  if ((b3 & 3) === 2) return null; // reserved emphasis
  const v = versionBits === 3 ? 1 : 2;
  const kbps = BITRATES[`${v}-${layer}`][bitrateIndex - 1];
  const sampleRate = SAMPLE_RATES[versionBits][srIndex];
  const padding = (b2 >> 1) & 1;
  const bitrate = kbps * 1000;
  let length: number;
  let samples: number;
  if (layer === 1) {
    length = (Math.floor((12 * bitrate) / sampleRate) + padding) * 4;
    samples = 384;
  } else if (layer === 2 || v === 1) {
    length = Math.floor((144 * bitrate) / sampleRate) + padding;
    samples = 1152;
  } else {
    length = Math.floor((72 * bitrate) / sampleRate) + padding;
    samples = 576;
  }
  const channels = (b3 >> 6) === 3 ? 1 : 2;
  return { versionBits, layer, sampleRate, channels, length, samples };
}

function sameStream(a: FrameHeader, b: FrameHeader): boolean {
  return a.versionBits === b.versionBits && a.layer === b.layer && a.sampleRate === b.sampleRate;
}

/** A header counts as a frame start when the next `chain` frames follow it (or the audio ends exactly). */
function isChainedFrame(b: Uint8Array, pos: number, end: number, chain: number): FrameHeader | null {
  const h = parseFrameHeader(b, pos);
  if (!h || pos + h.length > end) return null;
  let p = pos + h.length;
  for (let i = 0; i < chain; i++) {
    if (p === end || isTagAt(b, p, end)) return h;
    const n = parseFrameHeader(b, p);
    if (!n || !sameStream(h, n)) return null;
    p += n.length;
  }
  return h;
}

function id3v2Size(b: Uint8Array, pos: number): number {
  if (pos + 10 > b.length || b[pos] !== 0x49 || b[pos + 1] !== 0x44 || b[pos + 2] !== 0x33) return 0;
  const size = ((b[pos + 6] & 0x7f) << 21) | ((b[pos + 7] & 0x7f) << 14) | ((b[pos + 8] & 0x7f) << 7) | (b[pos + 9] & 0x7f);
  const footer = b[pos + 5] & 0x10 ? 10 : 0;
  return 10 + size + footer;
}

function asciiAt(b: Uint8Array, pos: number, text: string): boolean {
  if (pos + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[pos + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Trailing metadata that is not audio and not junk. */
function isTagAt(b: Uint8Array, pos: number, end: number): boolean {
  return (
    asciiAt(b, pos, 'TAG') || asciiAt(b, pos, 'APETAGEX') || asciiAt(b, pos, 'LYRICSBEGIN') || id3v2Size(b, pos) > 0 || pos >= end
  );
}

/** Bytes of Layer III side information after the 4-byte header (where a Xing/Info tag starts). */
export function sideInfoBytes(h: FrameHeader): number {
  return h.versionBits === 3 ? (h.channels === 1 ? 17 : 32) : h.channels === 1 ? 9 : 17;
}

/** Frame count promised by a Xing/Info header in this frame, if any. */
function xingFrameCount(b: Uint8Array, pos: number, h: FrameHeader): number | null {
  if (h.layer !== 3) return null;
  const at = pos + 4 + sideInfoBytes(h);
  if (!asciiAt(b, at, 'Xing') && !asciiAt(b, at, 'Info')) return null;
  const flags = (b[at + 4] << 24) | (b[at + 5] << 16) | (b[at + 6] << 8) | b[at + 7];
  if (!(flags & 1)) return null;
  return ((b[at + 8] << 24) | (b[at + 9] << 16) | (b[at + 10] << 8) | b[at + 11]) >>> 0;
}

/**
 * Scans the frames of an MP3 file. Throws AudioInputError for: no bytes ('empty'), no MPEG audio
 * frames ('not_mp3'), a file cut short or with too much junk between frames ('corrupt'), frames
 * holding no audio ('empty').
 */
export function scanMp3(bytes: Uint8Array): Mp3Scan {
  if (bytes.length === 0) throw new AudioInputError('empty', 'the file is empty (0 bytes)');
  let pos = 0;
  for (let size = id3v2Size(bytes, pos); size > 0; size = id3v2Size(bytes, pos)) pos += size;
  const end = bytes.length;
  if (pos >= end) throw new AudioInputError('empty', 'the file holds only an ID3 tag and no audio');

  let first: FrameHeader | null = null;
  let junkBytes = 0;
  while (pos + 4 <= end) {
    first = isChainedFrame(bytes, pos, end, 3);
    if (first) break;
    pos++;
    junkBytes++;
  }
  if (!first) throw new AudioInputError('not_mp3', 'not an MP3 file: no MPEG audio frames found');

  const promised = xingFrameCount(bytes, pos, first);
  const ranges: Array<[number, number]> = [];
  let runStart = pos;
  let frames = 0;
  let samples = 0;
  let truncatedAt = -1;
  while (pos < end) {
    const h = parseFrameHeader(bytes, pos);
    if (h && sameStream(first, h)) {
      if (pos + h.length > end) {
        truncatedAt = pos;
        break;
      }
      frames++;
      samples += h.samples;
      pos += h.length;
      continue;
    }
    if (isTagAt(bytes, pos, end)) break;
    // Lost sync: close the run and look for the next chained frame.
    if (pos > runStart) ranges.push([runStart, pos]);
    if (ranges.length >= MAX_RANGES) {
      throw new AudioInputError('corrupt', `the MP3 is corrupt: it loses sync more than ${MAX_RANGES} times (damaged data between ${frames} frames)`);
    }
    const lost = pos;
    while (pos + 4 <= end && !isChainedFrame(bytes, pos, end, 2) && !isTagAt(bytes, pos, end)) pos++;
    if (pos + 4 > end) pos = end;
    junkBytes += pos - lost;
    runStart = pos;
    if (isTagAt(bytes, pos, end) && !parseFrameHeader(bytes, pos)) break;
  }
  if (pos > runStart) ranges.push([Math.min(runStart, pos), pos]);

  if (truncatedAt >= 0) {
    throw new AudioInputError('corrupt', `the MP3 is truncated: the last frame (at byte ${truncatedAt}) is cut short`);
  }
  if (promised !== null && promised > frames + MISSING_FRAMES_TOLERATED) {
    throw new AudioInputError('corrupt', `the MP3 is truncated: its header promises ${promised} frames, the file holds ${frames}`);
  }
  const frameBytes = ranges.reduce((s, [a, b]) => s + (b - a), 0);
  if (junkBytes > JUNK_ALLOWANCE + JUNK_FRACTION * frameBytes) {
    throw new AudioInputError('corrupt', `the MP3 is corrupt: ${junkBytes} bytes of damaged data between ${frames} frames`);
  }
  const audioFrames = promised !== null ? frames - 1 : frames;
  if (audioFrames <= 0) throw new AudioInputError('empty', 'the MP3 holds no audio (zero-length)');
  const audioSamples = promised !== null ? samples - first.samples : samples;
  return {
    sampleRate: first.sampleRate,
    channels: first.channels,
    frames,
    samples: audioSamples,
    durationSec: audioSamples / first.sampleRate,
    ranges,
    junkBytes,
  };
}

/** How far past the ID3 tag the sniff looks for the first frame. */
const SNIFF_WINDOW = 65536;

/**
 * A cheap first look at uploaded bytes: after any ID3v2 tags, an MPEG audio frame header within the
 * first 64 KiB whose next frame also starts where the header says (or that ends the file). The
 * frame scan (`scanMp3`) and the decoder make the final judgement.
 */
export function looksLikeMp3(bytes: Uint8Array): boolean {
  let pos = 0;
  for (let size = id3v2Size(bytes, pos); size > 0; size = id3v2Size(bytes, pos)) pos += size;
  const limit = Math.min(bytes.length, pos + SNIFF_WINDOW);
  for (let i = pos; i < limit; i++) if (isChainedFrame(bytes, i, bytes.length, 1)) return true;
  return false;
}
