import { AudioInputError } from './audio-input-error.ts';
import { parseGuarded, ascii, checkSampleRate } from './audio-limits.ts';

/**
 * The one Ogg parser: walks every page header (capture pattern, CRC, segment table) without
 * decoding, names the codec from the first packet (Vorbis, Opus, or what else it carries) and
 * takes the length from the last page's granule position. A file cut mid-page, a page with a bad
 * CRC or junk between pages is corrupt before any decoder sees it.
 */
export interface OggInfo {
  codec: 'vorbis' | 'opus';
  sampleRate: number;
  channels: 1 | 2;
  /** Opus: samples (at 48 kHz) to drop at the start. */
  preSkip: number;
  pages: number;
  durationSec: number;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

/** The CRC-32 of the Ogg page at [start, end) (its own CRC field counted as zeros). */
export function oggPageCrc(b: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    const v = i >= start + 22 && i < start + 26 ? 0 : b[i]!; // the CRC field counts as zeros
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ v) & 0xff]!) >>> 0;
  }
  return crc;
}

export function isOgg(b: Uint8Array): boolean {
  return ascii(b, 0, 'OggS');
}

interface Page {
  headerType: number;
  granule: number;
  serial: number;
  bodyStart: number;
  end: number;
}

function readPage(b: Uint8Array, pos: number): Page {
  if (!ascii(b, pos, 'OggS')) throw new AudioInputError('corrupt', `the Ogg stream lost sync at byte ${pos} (no page where one should start)`);
  if (pos + 27 > b.length) throw new AudioInputError('corrupt', `the Ogg file is truncated: the page at byte ${pos} is cut short`);
  if (b[pos + 4] !== 0) throw new AudioInputError('corrupt', `the Ogg page at byte ${pos} has an unknown version ${b[pos + 4]}`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const segments = b[pos + 26]!;
  const bodyStart = pos + 27 + segments;
  if (bodyStart > b.length) throw new AudioInputError('corrupt', `the Ogg file is truncated: the page at byte ${pos} is cut short`);
  let bodyLen = 0;
  for (let i = 0; i < segments; i++) bodyLen += b[pos + 27 + i]!;
  const end = bodyStart + bodyLen;
  if (end > b.length) throw new AudioInputError('corrupt', `the Ogg file is truncated: the page at byte ${pos} is cut short`);
  if (oggPageCrc(b, pos, end) !== view.getUint32(pos + 22, true)) throw new AudioInputError('corrupt', `the Ogg page at byte ${pos} fails its checksum`);
  const lo = view.getUint32(pos + 6, true);
  const hi = view.getInt32(pos + 10, true);
  return { headerType: b[pos + 5]!, granule: hi * 2 ** 32 + lo, serial: view.getUint32(pos + 14, true), bodyStart, end };
}

function codecName(b: Uint8Array, at: number): string {
  if (ascii(b, at, '\x80theora')) return 'an Ogg video (Theora)';
  if (ascii(b, at, '\x7fFLAC')) return 'Ogg FLAC';
  if (ascii(b, at, 'Speex   ')) return 'Ogg Speex';
  if (ascii(b, at, 'fishead')) return 'an Ogg Skeleton stream';
  if (ascii(b, at, 'OVP80')) return 'an Ogg video (VP8)';
  return 'an Ogg file of an unknown codec';
}

/** Parses an Ogg Vorbis or Ogg Opus file's pages. Throws AudioInputError: unsupported_format, corrupt, empty. */
export function parseOgg(b: Uint8Array): OggInfo {
  return parseGuarded('Ogg', () => parseOggUnguarded(b));
}

function parseOggUnguarded(b: Uint8Array): OggInfo {
  if (!isOgg(b)) throw new AudioInputError('unsupported_format', 'not an Ogg file (no "OggS" page)');
  const first = readPage(b, 0);
  if (!(first.headerType & 0x02)) throw new AudioInputError('corrupt', 'the first Ogg page is not the start of a stream');
  const id = first.bodyStart;
  let codec: OggInfo['codec'];
  let channels: number;
  let sampleRate: number;
  let preSkip = 0;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (ascii(b, id, '\x01vorbis') && first.end - id >= 30) {
    codec = 'vorbis';
    channels = b[id + 11]!;
    sampleRate = view.getUint32(id + 12, true);
  } else if (ascii(b, id, 'OpusHead') && first.end - id >= 19) {
    codec = 'opus';
    channels = b[id + 9]!;
    preSkip = view.getUint16(id + 10, true);
    sampleRate = 48000; // Opus always decodes at 48 kHz, whatever rate the input had
  } else {
    throw new AudioInputError('unsupported_format', `the file is ${codecName(b, id)}; Ogg files are taken with Vorbis or Opus audio`);
  }
  const name = codec === 'vorbis' ? 'Ogg Vorbis' : 'Ogg Opus';
  if (channels === 0) throw new AudioInputError('corrupt', `the ${name} header declares 0 channels`);
  if (channels > 2) throw new AudioInputError('unsupported_format', `the file is ${name} with ${channels} channels; only mono and stereo are taken`);
  checkSampleRate(sampleRate, name);

  let pos = first.end;
  let pages = 1;
  let granule = first.granule;
  while (pos < b.length) {
    const page = readPage(b, pos);
    if (page.serial !== first.serial) {
      throw new AudioInputError('unsupported_format', `the file is an Ogg file with more than one stream (byte ${pos}); only a single Vorbis or Opus stream is taken`);
    }
    if (page.granule >= 0) granule = page.granule;
    pages++;
    pos = page.end;
  }
  const samples = codec === 'opus' ? granule - preSkip : granule;
  if (samples <= 0) throw new AudioInputError('empty', `the ${name} file holds no audio`);
  return { codec, sampleRate, channels: channels as 1 | 2, preSkip, pages, durationSec: samples / sampleRate };
}
