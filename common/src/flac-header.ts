import { AudioInputError } from './audio-input-error.ts';
import { ascii, checkSampleRate, skipId3v2 } from './audio-limits.ts';

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
  /** null when STREAMINFO does not say. */
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
  return {
    sampleRate,
    channels: channels as 1 | 2,
    bitsPerSample,
    totalSamples,
    durationSec: totalSamples > 0 ? totalSamples / sampleRate : null,
    maxBlockSize,
    streamStart: start,
    audioStart: pos,
  };
}
