import { AudioInputError } from './audio-input-error.ts';

/** The longest song taken by default (MAX_DURATION_SEC; the CLI's --max-duration), seconds. */
export const DEFAULT_MAX_DURATION_SEC = 900;

/**
 * Sample rates the input parsers take. Each is resampled to the model's 44.1 kHz by a polyphase
 * filter whose size grows with 44100 / gcd(rate, 44100): the common rates keep it small, an
 * arbitrary rate (44101 Hz) would need 44,100 phases.
 */
export const INPUT_SAMPLE_RATES: readonly number[] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000];

export function checkSampleRate(rate: number, what: string): void {
  if (rate === 0) throw new AudioInputError('corrupt', `the ${what} header declares a sample rate of 0 Hz`);
  if (!INPUT_SAMPLE_RATES.includes(rate)) {
    throw new AudioInputError('unsupported_format', `the file is a ${what} at ${rate} Hz; the rates taken are ${INPUT_SAMPLE_RATES.join(', ')} Hz`);
  }
}

/** True when `text` (ASCII) is at b[pos..]. */
export function ascii(b: Uint8Array, pos: number, text: string): boolean {
  if (pos < 0 || pos + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[pos + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Size of the ID3v2 tag at `pos` (header + body + footer), 0 when there is none. */
export function id3v2TagSize(b: Uint8Array, pos: number): number {
  if (pos + 10 > b.length || !ascii(b, pos, 'ID3')) return 0;
  const size = ((b[pos + 6]! & 0x7f) << 21) | ((b[pos + 7]! & 0x7f) << 14) | ((b[pos + 8]! & 0x7f) << 7) | (b[pos + 9]! & 0x7f);
  const footer = b[pos + 5]! & 0x10 ? 10 : 0;
  return 10 + size + footer;
}

/** Offset after any ID3v2 tags at the start. */
export function skipId3v2(b: Uint8Array): number {
  let pos = 0;
  for (let size = id3v2TagSize(b, pos); size > 0; size = id3v2TagSize(b, pos)) pos += size;
  return pos;
}

/**
 * Runs a header parser so that a read past the end of the bytes (a DataView RangeError on a hostile
 * size field that slipped past a bounds check) is the client's corrupt file, never a server error.
 */
export function parseGuarded<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof AudioInputError) throw err;
    if (err instanceof RangeError) throw new AudioInputError('corrupt', `the ${what} header is malformed (a size or offset points past the end of the file)`, { cause: err });
    throw err;
  }
}
