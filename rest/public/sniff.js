// @ts-check
// What a file is, from its first bytes — checked in the browser before any byte is uploaded.
// The formats are the ones the server takes: MP3 (frame sync or ID3v2), WAV, FLAC, Ogg, M4A/AAC.

/** @typedef {'mp3' | 'wav' | 'flac' | 'ogg' | 'm4a'} AudioKind */
/** @typedef {{ kind: AudioKind } | { kind: null, looksLike: string }} Sniffed */

/** How many bytes the sniff reads. */
export const SNIFF_BYTES = 64;

/** @param {Uint8Array} b @param {number} at @param {string} ascii */
const has = (b, at, ascii) => [...ascii].every((c, i) => b[at + i] === c.charCodeAt(0));

/**
 * @param {Uint8Array} b the file's first bytes
 * @returns {Sniffed}
 */
export function sniffBytes(b) {
  if (has(b, 0, 'ID3')) return { kind: 'mp3' };
  if (has(b, 0, 'RIFF') && has(b, 8, 'WAVE')) return { kind: 'wav' };
  if (has(b, 0, 'fLaC')) return { kind: 'flac' };
  if (has(b, 0, 'OggS')) return { kind: 'ogg' };
  if (has(b, 4, 'ftyp')) return { kind: 'm4a' };
  // ADTS AAC (12 sync bits, layer 00) is refused by the server as it is: AAC is taken in M4A/MP4.
  if (b[0] === 0xff && (b[1] & 0xf6) === 0xf0) return { kind: null, looksLike: 'raw AAC (ADTS) without an M4A/MP4 container' };
  // MPEG audio: 11 sync bits, a valid version and layer.
  if (b[0] === 0xff && (b[1] & 0xe0) === 0xe0 && (b[1] & 0x18) !== 0x08 && (b[1] & 0x06) !== 0) return { kind: 'mp3' };
  return { kind: null, looksLike: describe(b) };
}

/** A few words for what a non-audio file seems to be. @param {Uint8Array} b */
function describe(b) {
  if (has(b, 0, '\x89PNG')) return 'a PNG image';
  if (b[0] === 0xff && b[1] === 0xd8) return 'a JPEG image';
  if (has(b, 0, '%PDF')) return 'a PDF document';
  if (has(b, 0, 'PK\x03\x04')) return 'a zip archive';
  if (has(b, 0, 'GIF8')) return 'a GIF image';
  if (has(b, 4, 'moov') || has(b, 0, '\x1aE\xdf\xa3')) return 'a video';
  const text = b.length > 0 && [...b].every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127) || c >= 0xc2);
  return text ? 'text' : 'not audio';
}

/** Reads a file's first bytes and sniffs them. @param {Blob} file @returns {Promise<Sniffed>} */
export async function sniffFile(file) {
  return sniffBytes(new Uint8Array(await file.slice(0, SNIFF_BYTES).arrayBuffer()));
}
