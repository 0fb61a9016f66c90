import { AudioInputError } from './audio-input-error.ts';
import { parseGuarded, ascii, checkSampleRate, skipId3v2 } from './audio-limits.ts';

/**
 * The one FLAC header parser (native FLAC, "fLaC" after any ID3v2 tags): the STREAMINFO block gives
 * rate, channels, bit depth and the total length before anything is decoded; the metadata blocks
 * are walked to where the audio frames start.
 */
export interface FlacInfo {
  sampleRate: number;
  channels: 1 | 2;
  bitsPerSample: number;
  /** Samples per channel, 0 when the encoder did not know (a stream). */
  totalSamples: number;
  /** Samples the file should decode to: STREAMINFO's total, else the last frame's end; 0 when neither is known. */
  expectedSamples: number;
  /** From STREAMINFO, else from the last frame's number (a stream's encoder leaves STREAMINFO at 0); null when neither says. */
  durationSec: number | null;
  maxBlockSize: number;
  /** Offset of "fLaC". */
  streamStart: number;
  /** Offset of the first audio frame. */
  audioStart: number;
}

export function flacStart(b: Uint8Array): number {
  const pos = skipId3v2(b);
  return ascii(b, pos, 'fLaC') ? pos : -1;
}

/** Parses a FLAC header. Throws AudioInputError: unsupported_format, corrupt, empty. */
export function parseFlac(b: Uint8Array): FlacInfo {
  return parseGuarded('FLAC', () => parseFlacUnguarded(b));
}

function parseFlacUnguarded(b: Uint8Array): FlacInfo {
  const start = flacStart(b);
  if (start < 0) throw new AudioInputError('unsupported_format', 'not a FLAC file (no "fLaC" marker)');
  let pos = start + 4;
  if (pos + 4 + 34 > b.length) throw new AudioInputError('corrupt', 'the FLAC is truncated inside its STREAMINFO block');
  if ((b[pos]! & 0x7f) !== 0 || ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!) !== 34) {
    throw new AudioInputError('corrupt', 'the FLAC does not start with a valid STREAMINFO block');
  }
  const si = pos + 4;
  const maxBlockSize = (b[si + 2]! << 8) | b[si + 3]!;
  const sampleRate = (b[si + 10]! << 12) | (b[si + 11]! << 4) | (b[si + 12]! >> 4);
  const channels = ((b[si + 12]! >> 1) & 7) + 1;
  const bitsPerSample = (((b[si + 12]! & 1) << 4) | (b[si + 13]! >> 4)) + 1;
  const totalSamples = (b[si + 13]! & 0x0f) * 2 ** 32 + ((b[si + 14]! << 24) >>> 0) + ((b[si + 15]! << 16) | (b[si + 16]! << 8) | b[si + 17]!);
  if (channels > 2) throw new AudioInputError('unsupported_format', `the file is a FLAC with ${channels} channels; only mono and stereo are taken`);
  if (bitsPerSample < 4 || bitsPerSample > 24) throw new AudioInputError('unsupported_format', `the file is a ${bitsPerSample}-bit FLAC; 4 to 24 bits are taken`);
  if (maxBlockSize < 16) throw new AudioInputError('corrupt', `the FLAC's STREAMINFO declares a maximum block size of ${maxBlockSize}`);
  checkSampleRate(sampleRate, 'FLAC');
  // Walk the metadata blocks to the first frame.
  let last = (b[pos]! & 0x80) !== 0;
  pos = si + 34;
  let blocks = 1;
  while (!last) {
    if (pos + 4 > b.length) throw new AudioInputError('corrupt', 'the FLAC is truncated inside its metadata');
    const type = b[pos]! & 0x7f;
    if (type === 127) throw new AudioInputError('corrupt', 'the FLAC has an invalid metadata block (type 127)');
    last = (b[pos]! & 0x80) !== 0;
    pos += 4 + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!);
    if (++blocks > 10_000) throw new AudioInputError('corrupt', 'the FLAC has more than 10,000 metadata blocks');
  }
  if (pos >= b.length) {
    if (pos > b.length) throw new AudioInputError('corrupt', 'the FLAC is truncated inside its metadata');
    throw new AudioInputError('empty', 'the FLAC holds no audio frames');
  }
  if (b[pos] !== 0xff || (b[pos + 1]! & 0xfe) !== 0xf8) throw new AudioInputError('corrupt', `the FLAC has no audio frame where its metadata ends (byte ${pos})`);
  // A stream written without knowing its length (STREAMINFO total 0) still numbers its frames: the last one says how long it is.
  const lastFrameEnd = samplesToLastFrame(b, pos, maxBlockSize, channels, bitsPerSample);
  // With a stated length, the last frame shows a cut: it starts short of the end by more than a block.
  if (totalSamples > 0 && lastFrameEnd > 0 && lastFrameEnd + maxBlockSize < totalSamples) {
    throw new AudioInputError('corrupt', `the FLAC is truncated: its header promises ${totalSamples} samples, its last frame ends at sample ${lastFrameEnd}`);
  }
  return {
    sampleRate,
    channels: channels as 1 | 2,
    bitsPerSample,
    totalSamples,
    expectedSamples: totalSamples > 0 ? totalSamples : lastFrameEnd,
    durationSec: totalSamples > 0 ? totalSamples / sampleRate : lastFrameEnd > 0 ? lastFrameEnd / sampleRate : null,
    maxBlockSize,
    streamStart: start,
    audioStart: pos,
  };
}

/** How far back from the end the last frame header is looked for. */
const LAST_FRAME_WINDOW = 256 * 1024;
const SAMPLE_SIZE_BITS = [0, 8, 12, -1, 16, 20, 24, 32];

function crc8(b: Uint8Array, from: number, to: number): number {
  let crc = 0;
  for (let i = from; i < to; i++) {
    crc ^= b[i]!;
    for (let k = 0; k < 8; k++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

/**
 * Samples up to the end of the last frame whose header (CRC-8 checked, consistent with STREAMINFO)
 * lies in the last 256 KB; 0 when none is found. Frame headers carry the frame number (fixed block
 * size) or the first sample's number (variable), so this is the stream's length.
 */
function samplesToLastFrame(b: Uint8Array, audioStart: number, maxBlock: number, channels: number, bits: number): number {
  for (let pos = b.length - 6; pos >= Math.max(audioStart, b.length - LAST_FRAME_WINDOW); pos--) {
    if (b[pos] !== 0xff || (b[pos + 1]! & 0xfe) !== 0xf8) continue;
    const variable = (b[pos + 1]! & 1) === 1;
    const bsCode = b[pos + 2]! >> 4;
    const srCode = b[pos + 2]! & 0x0f;
    const chCode = b[pos + 3]! >> 4;
    const ssCode = (b[pos + 3]! >> 1) & 7;
    if (bsCode === 0 || srCode === 15 || (b[pos + 3]! & 1) !== 0) continue;
    if (chCode < 8 ? chCode + 1 !== channels : chCode > 10 || channels !== 2) continue;
    if (ssCode !== 0 && SAMPLE_SIZE_BITS[ssCode] !== bits) continue;
    // The UTF-8-like coded frame or sample number.
    let p = pos + 4;
    const lead = b[p];
    if (lead === undefined) continue;
    let extra = 0;
    let value: number;
    if (lead < 0x80) value = lead;
    else if (lead >= 0xc0 && lead < 0xfe) {
      extra = lead >= 0xfc ? 5 : lead >= 0xf8 ? 4 : lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : 1;
      value = lead & (0x3f >> extra);
    } else continue;
    let ok = true;
    for (let i = 1; i <= extra; i++) {
      const c = b[p + i];
      if (c === undefined || (c & 0xc0) !== 0x80) {
        ok = false;
        break;
      }
      value = value * 64 + (c & 0x3f);
    }
    if (!ok) continue;
    p += 1 + extra;
    let block: number;
    if (bsCode === 1) block = 192;
    else if (bsCode <= 5) block = 576 << (bsCode - 2);
    else if (bsCode === 6) block = (b[p++] ?? 0) + 1;
    else if (bsCode === 7) {
      block = (((b[p] ?? 0) << 8) | (b[p + 1] ?? 0)) + 1;
      p += 2;
    } else block = 256 << (bsCode - 8);
    if (srCode === 12) p += 1;
    else if (srCode === 13 || srCode === 14) p += 2;
    if (p >= b.length || crc8(b, pos, p) !== b[p]) continue;
    if (block > maxBlock) continue;
    return variable ? value + block : value * maxBlock + block;
  }
  return 0;
}
