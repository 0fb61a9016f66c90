import { AudioInputError } from './audio-input-error.ts';
import { ascii, skipId3v2 } from './audio-limits.ts';
import { isWav, parseWav, wavFormatTag } from './wav-header.ts';

/** WAVE_FORMAT_MPEGLAYER3: MP3 frames in a RIFF wrapper, which the MP3 path has always decoded. */
const WAV_MP3_TAG = 0x55;
import { flacStart, parseFlac } from './flac-header.ts';
import { isOgg, parseOgg } from './ogg-pages.ts';
import { isMp4, mp4BrandName, parseMp4Aac } from './mp4-boxes.ts';
import { looksLikeMp3, scanMp3 } from './mpeg-frames.ts';

/**
 * Which audio format uploaded bytes are, told by their content (never by a file name or a
 * Content-Type): rest's check at submit and the worker's decoder dispatch both ask here. Each
 * format has its one header parser (wav-header, flac-header, ogg-pages, mp4-boxes, mpeg-frames),
 * which gives the length before anything is decoded.
 */
export type AudioFormat = 'mp3' | 'wav' | 'flac' | 'ogg-vorbis' | 'ogg-opus' | 'mp4-aac';

export const AUDIO_FORMAT_NAMES: Record<AudioFormat, string> = {
  mp3: 'MP3',
  wav: 'WAV',
  flac: 'FLAC',
  'ogg-vorbis': 'Ogg Vorbis',
  'ogg-opus': 'Ogg Opus',
  'mp4-aac': 'M4A/MP4 (AAC)',
};

/** The formats taken, as one phrase for messages, the page and the docs. */
export const ACCEPTED_FORMATS = 'MP3, WAV (16/24/32-bit integer or 32-bit float PCM, mono or stereo), FLAC, Ogg Vorbis, Ogg Opus, or M4A/MP4 with AAC';

export type Sniffed = { format: AudioFormat } | { format: null; found: string };

/** Signatures of things that are not audio we take, with what to call them. */
const FOREIGN: Array<[(b: Uint8Array) => boolean, string]> = [
  [(b) => ascii(b, 0, 'FORM') && (ascii(b, 8, 'AIFF') || ascii(b, 8, 'AIFC')), 'an AIFF file'],
  [(b) => ascii(b, 0, 'RIFF') && ascii(b, 8, 'AVI '), 'an AVI video'],
  [(b) => ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP'), 'a WebP image'],
  [(b) => ascii(b, 0, 'RIFF'), 'a RIFF file that is not WAV'],
  [(b) => b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3, 'a Matroska/WebM file'],
  [(b) => ascii(b, 0, 'MThd'), 'a MIDI file (notes, not recorded audio)'],
  [(b) => ascii(b, 0, 'caff'), 'a Core Audio (CAF) file'],
  [(b) => ascii(b, 0, 'wvpk'), 'a WavPack file'],
  [(b) => ascii(b, 0, 'MAC '), "a Monkey's Audio (APE) file"],
  [(b) => ascii(b, 0, '#!AMR'), 'an AMR file'],
  [(b) => ascii(b, 0, '.snd'), 'a Sun/NeXT AU file'],
  [(b) => b[0] === 0x30 && b[1] === 0x26 && b[2] === 0xb2 && b[3] === 0x75, 'a Windows Media (ASF/WMA) file'],
  [(b) => ascii(b, 0, 'DSD ') || ascii(b, 0, 'FRM8'), 'a DSD audio file'],
  [(b) => b[0] === 0xff && (b[1]! & 0xf6) === 0xf0, 'raw AAC (ADTS) without an M4A container'],
  [(b) => ascii(b, 0, 'PK\x03\x04') || ascii(b, 0, 'PK\x05\x06'), 'a ZIP archive'],
  [(b) => ascii(b, 0, '%PDF'), 'a PDF document'],
  [(b) => ascii(b, 0, '\x89PNG'), 'a PNG image'],
  [(b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff, 'a JPEG image'],
  [(b) => ascii(b, 0, 'GIF8'), 'a GIF image'],
  [(b) => ascii(b, 0, '\x7fELF') || ascii(b, 0, 'MZ'), 'a program (executable)'],
  [(b) => b[0] === 0x1f && b[1] === 0x8b, 'a gzip archive'],
  [(b) => ascii(b, 0, 'Rar!') || ascii(b, 0, '7z\xbc\xaf'), 'an archive (RAR/7z)'],
];

function looksLikeText(b: Uint8Array): boolean {
  const n = Math.min(b.length, 512);
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c < 9 || (c > 13 && c < 32 && c !== 27)) return false;
  }
  return true;
}

/** Names the format of `bytes` from their first bytes, or says what they are instead. */
export function sniffAudioFormat(bytes: Uint8Array): Sniffed {
  if (isWav(bytes)) return wavFormatTag(bytes) === WAV_MP3_TAG && looksLikeMp3(bytes) ? { format: 'mp3' } : { format: 'wav' };
  if (flacStart(bytes) >= 0) return { format: 'flac' };
  if (isOgg(bytes)) {
    // The codec is in the first packet; parseOgg tells Vorbis from Opus from everything else.
    const first = 28 + (bytes[26] ?? 0);
    if (ascii(bytes, first - 1, '\x01vorbis')) return { format: 'ogg-vorbis' };
    if (ascii(bytes, first - 1, 'OpusHead')) return { format: 'ogg-opus' };
    return { format: 'ogg-vorbis' }; // parseOgg names what it really is
  }
  if (isMp4(bytes)) return mp4BrandName(bytes) ? { format: null, found: mp4BrandName(bytes)! } : { format: 'mp4-aac' };
  for (const [test, name] of FOREIGN) if (test(bytes)) return { format: null, found: name };
  if (looksLikeMp3(bytes)) return { format: 'mp3' };
  if (skipId3v2(bytes) > 0) return { format: null, found: 'an ID3 tag without MP3 audio after it' };
  if (looksLikeText(bytes)) return { format: null, found: /^\s*</.test(new TextDecoder().decode(bytes.subarray(0, 64))) ? 'an HTML/XML text' : 'text' };
  return { format: null, found: 'data of no audio format we know' };
}

/** The sentence for bytes that are none of the formats taken. */
export function unsupportedFormatError(found: string): AudioInputError {
  return new AudioInputError('unsupported_format', `the file is ${found}; the formats taken are ${ACCEPTED_FORMATS}`);
}

export interface AudioProbe {
  format: AudioFormat;
  sampleRate: number;
  channels: 1 | 2;
  /** From the container's header or frame scan, before decoding. */
  durationSec: number | null;
}

/**
 * Format and length of an upload, from its headers only (no decoding). Throws AudioInputError:
 * unsupported_format (naming what was found), corrupt, empty.
 */
export function probeAudio(bytes: Uint8Array): AudioProbe {
  if (bytes.length === 0) throw new AudioInputError('empty', 'the file is empty (0 bytes)');
  const sniffed = sniffAudioFormat(bytes);
  if (sniffed.format === null) throw unsupportedFormatError(sniffed.found);
  switch (sniffed.format) {
    case 'mp3': {
      const s = scanMp3(bytes);
      return { format: 'mp3', sampleRate: s.sampleRate, channels: s.channels, durationSec: s.durationSec };
    }
    case 'wav': {
      const w = parseWav(bytes);
      return { format: 'wav', sampleRate: w.sampleRate, channels: w.channels, durationSec: w.durationSec };
    }
    case 'flac': {
      const f = parseFlac(bytes);
      return { format: 'flac', sampleRate: f.sampleRate, channels: f.channels, durationSec: f.durationSec };
    }
    case 'ogg-vorbis':
    case 'ogg-opus': {
      const o = parseOgg(bytes);
      return { format: o.codec === 'opus' ? 'ogg-opus' : 'ogg-vorbis', sampleRate: o.sampleRate, channels: o.channels, durationSec: o.durationSec };
    }
    case 'mp4-aac': {
      const m = parseMp4Aac(bytes);
      return { format: 'mp4-aac', sampleRate: m.sampleRate, channels: m.channels, durationSec: m.durationSec };
    }
  }
}
