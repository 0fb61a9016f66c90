import { AudioInputError } from './audio-input-error.ts';
import { parseGuarded, checkSampleRate, ascii } from './audio-limits.ts';

/**
 * The one WAV (RIFF/WAVE) header parser: rest's duration at submit and the worker's decoder. It
 * walks the RIFF chunks without reading the samples: format (PCM 8/16/24/32-bit integer or 32/64-bit
 * float, plain or WAVE_FORMAT_EXTENSIBLE), channels, rate, and where the sample data lies.
 */
export interface WavInfo {
  encoding: 'pcm' | 'float';
  bitsPerSample: 8 | 16 | 24 | 32 | 64;
  channels: 1 | 2;
  sampleRate: number;
  /** Bytes per sample frame (all channels). */
  blockAlign: number;
  /** Byte offset of the first sample frame. */
  dataStart: number;
  /** Sample frames present (whole frames only). */
  frames: number;
  durationSec: number;
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** Formats a WAV may carry that we name instead of decoding. */
const OTHER_WAV_CODECS: Record<number, string> = {
  2: 'Microsoft ADPCM',
  6: 'A-law',
  7: 'μ-law',
  0x11: 'IMA ADPCM',
  0x31: 'GSM 6.10',
  0x50: 'MPEG Layer II',
  0x55: 'MP3',
  0xff: 'AAC',
  0x161: 'WMA',
};
/** A data chunk size that streaming writers put when they do not know the length. */
const UNKNOWN_SIZES = new Set([0, 0xffffffff]);

export function isWav(b: Uint8Array): boolean {
  return ascii(b, 0, 'RIFF') && ascii(b, 8, 'WAVE');
}

/** The format tag of a WAV's fmt chunk (the SubFormat's for WAVE_FORMAT_EXTENSIBLE), null when there is none. */
export function wavFormatTag(b: Uint8Array): number | null {
  if (!isWav(b)) return null;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let pos = 12; pos + 8 <= b.length; ) {
    const size = view.getUint32(pos + 4, true);
    if (ascii(b, pos, 'fmt ') && pos + 10 <= b.length) {
      const tag = view.getUint16(pos + 8, true);
      return tag === WAVE_FORMAT_EXTENSIBLE && pos + 34 <= b.length ? view.getUint16(pos + 32, true) : tag;
    }
    pos += 8 + size + (size & 1);
  }
  return null;
}

/**
 * Parses a WAV header. Throws AudioInputError: unsupported_format, corrupt, empty. `fileBytes`: the
 * whole file's size when `b` is only its start (the worker reads a stored WAV as it decodes it); the
 * format chunk and the data chunk's header must be within `b`.
 */
export function parseWav(b: Uint8Array, fileBytes = b.length): WavInfo {
  return parseGuarded('WAV', () => parseWavUnguarded(b, fileBytes));
}

function parseWavUnguarded(b: Uint8Array, fileBytes: number): WavInfo {
  if (ascii(b, 0, 'RF64')) throw new AudioInputError('unsupported_format', 'the file is an RF64 (64-bit) WAV; only plain RIFF WAV files are taken');
  if (!isWav(b)) throw new AudioInputError('unsupported_format', 'not a WAV file (no RIFF/WAVE header)');
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let fmt: Omit<WavInfo, 'dataStart' | 'frames' | 'durationSec'> | null = null;
  let pos = 12;
  while (pos + 8 <= b.length) {
    const size = view.getUint32(pos + 4, true);
    const body = pos + 8;
    if (ascii(b, pos, 'fmt ')) {
      if (size < 16 || body + size > b.length) throw new AudioInputError('corrupt', 'the WAV format chunk is cut short');
      fmt = parseFmt(view, body, size);
    } else if (ascii(b, pos, 'data')) {
      if (!fmt) throw new AudioInputError('corrupt', 'the WAV has its data chunk before its format chunk');
      const available = fileBytes - body;
      let bytes = size;
      if (size > available) {
        if (!UNKNOWN_SIZES.has(size)) {
          throw new AudioInputError('corrupt', `the WAV is truncated: its data chunk promises ${size} bytes, the file holds ${available}`);
        }
        bytes = available;
      } else if (size === 0) bytes = available; // a writer that never went back to fill in the size
      const frames = Math.floor(bytes / fmt.blockAlign);
      if (frames === 0) throw new AudioInputError('empty', 'the WAV holds no audio (an empty data chunk)');
      return { ...fmt, dataStart: body, frames, durationSec: frames / fmt.sampleRate };
    }
    pos = body + size + (size & 1);
  }
  if (!fmt) throw new AudioInputError('corrupt', 'the WAV has no format chunk');
  throw new AudioInputError('corrupt', 'the WAV has no data chunk (truncated?)');
}

function parseFmt(view: DataView, at: number, size: number): Omit<WavInfo, 'dataStart' | 'frames' | 'durationSec'> {
  let tag = view.getUint16(at, true);
  const channels = view.getUint16(at + 2, true);
  const sampleRate = view.getUint32(at + 4, true);
  const blockAlign = view.getUint16(at + 12, true);
  const bits = view.getUint16(at + 14, true);
  if (tag === WAVE_FORMAT_EXTENSIBLE) {
    if (size < 40) throw new AudioInputError('corrupt', 'the WAV_FORMAT_EXTENSIBLE format chunk is cut short');
    tag = view.getUint16(at + 24, true); // the first two bytes of the SubFormat GUID are the format tag
  }
  if (tag !== WAVE_FORMAT_PCM && tag !== WAVE_FORMAT_IEEE_FLOAT) {
    const name = OTHER_WAV_CODECS[tag];
    throw new AudioInputError('unsupported_format', `the file is a WAV with ${name ?? `format tag 0x${tag.toString(16)}`} audio; WAVs are taken as integer PCM or float`);
  }
  if (channels === 0) throw new AudioInputError('corrupt', 'the WAV format chunk declares 0 channels');
  if (channels > 2) throw new AudioInputError('unsupported_format', `the file is a WAV with ${channels} channels; only mono and stereo are taken`);
  const okBits = tag === WAVE_FORMAT_PCM ? [8, 16, 24, 32] : [32, 64];
  if (!okBits.includes(bits)) {
    throw new AudioInputError('unsupported_format', `the file is a ${bits}-bit ${tag === WAVE_FORMAT_PCM ? 'integer' : 'float'} WAV; taken: 8/16/24/32-bit integer, 32/64-bit float`);
  }
  if (blockAlign !== (channels * bits) / 8) throw new AudioInputError('corrupt', `the WAV's block size (${blockAlign}) does not match ${channels} × ${bits} bits`);
  checkSampleRate(sampleRate, 'WAV');
  return {
    encoding: tag === WAVE_FORMAT_PCM ? 'pcm' : 'float',
    bitsPerSample: bits as WavInfo['bitsPerSample'],
    channels: channels as 1 | 2,
    sampleRate,
    blockAlign,
  };
}
