import { AudioInputError } from './audio-input-error.ts';
import { parseGuarded, ascii } from './audio-limits.ts';

/**
 * The one MP4/M4A (ISO BMFF, QuickTime) parser: walks the boxes to the first sound track and reads
 * its codec, AudioSpecificConfig, length and sample table (where each AAC access unit lies), before
 * anything is decoded. Every size is checked against the file, so a truncated or hostile file is
 * refused here, not inside a decoder.
 */
export interface Mp4AacTrack {
  /** The AudioSpecificConfig from the esds box. */
  asc: Uint8Array;
  channels: 1 | 2;
  /** Sample rate of the sample entry (with SBR the decoder outputs twice the core rate). */
  sampleRate: number;
  timescale: number;
  /**
   * The media header's length, or the length the access units decode to (1,024 samples each at
   * the entry's rate) when that is longer: a header that understates the audio cannot make it short.
   */
  durationSec: number;
  /** Access units in the track (each lies inside the file: checked without building a table). */
  units: number;
  /**
   * Byte offset and size of each access unit, in decoding order: built on first read (12 bytes a
   * unit), so a caller that checks `durationSec` first allocates only for a length it accepts.
   */
  readonly offsets: Float64Array;
  readonly sizes: Uint32Array;
  /** Gapless window from the edit list (seconds of media time), when there is one media edit. */
  gapless: { start: number; duration?: number } | null;
}

interface Box {
  type: string;
  start: number;
  body: number;
  end: number;
}

/** A real M4A has tens of boxes; each one parsed is an object, so their number is capped (~1 MB). */
const MAX_BOXES = 10_000;

function boxes(b: Uint8Array, from: number, to: number, counter: { n: number }): Box[] {
  const out: Box[] = [];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let pos = from;
  while (pos + 8 <= to) {
    if (++counter.n > MAX_BOXES) throw new AudioInputError('corrupt', `the MP4 has more than ${MAX_BOXES} boxes`);
    let size = view.getUint32(pos);
    const type = String.fromCharCode(b[pos + 4]!, b[pos + 5]!, b[pos + 6]!, b[pos + 7]!);
    let body = pos + 8;
    if (size === 1) {
      if (pos + 16 > to) throw new AudioInputError('corrupt', `the MP4 box "${printable(type)}" at byte ${pos} is cut short`);
      size = view.getUint32(pos + 8) * 2 ** 32 + view.getUint32(pos + 12);
      body = pos + 16;
    } else if (size === 0) size = to - pos;
    if (size < body - pos) throw new AudioInputError('corrupt', `the MP4 box "${printable(type)}" at byte ${pos} has an impossible size ${size}`);
    const end = pos + size;
    if (end > to) {
      throw new AudioInputError('corrupt', `the MP4 is truncated: the "${printable(type)}" box at byte ${pos} is ${size} bytes, ${to - pos} remain`);
    }
    out.push({ type, start: pos, body, end });
    pos = end;
  }
  return out;
}

const printable = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?');
const child = (list: Box[], type: string): Box | undefined => list.find((x) => x.type === type);

export function isMp4(b: Uint8Array): boolean {
  return ascii(b, 4, 'ftyp');
}

/** What an ftyp brand says the file is, when it is not audio/video MP4 at all. */
export function mp4BrandName(b: Uint8Array): string | null {
  if (!isMp4(b) || b.length < 12) return null;
  const brand = String.fromCharCode(b[8]!, b[9]!, b[10]!, b[11]!);
  if (['heic', 'heix', 'mif1', 'msf1', 'hevc'].includes(brand)) return 'a HEIF/HEIC image';
  if (brand === 'avif' || brand === 'avis') return 'an AVIF image';
  if (brand === 'crx ') return 'a Canon raw photo (CR3)';
  if (brand === 'jp2 ') return 'a JPEG 2000 image';
  return null;
}

function fullBoxBody(box: Box): number {
  return box.body + 4;
}

function sampleEntryName(fourcc: string): string {
  const names: Record<string, string> = {
    alac: 'Apple Lossless (ALAC)',
    'ac-3': 'Dolby Digital (AC-3)',
    'ec-3': 'Dolby Digital Plus (E-AC-3)',
    Opus: 'Opus',
    fLaC: 'FLAC',
    samr: 'AMR',
    sawb: 'AMR-WB',
    '.mp3': 'MP3',
    lpcm: 'uncompressed PCM',
    sowt: 'uncompressed PCM',
    twos: 'uncompressed PCM',
    ipcm: 'uncompressed PCM',
    fpcm: 'uncompressed PCM',
    mha1: 'MPEG-H 3D audio',
  };
  return names[fourcc] ?? `"${printable(fourcc)}"`;
}

/** Reads an MPEG-4 descriptor length (1–4 bytes, 7 bits each). */
function descriptor(b: Uint8Array, pos: number, end: number): { tag: number; body: number; end: number } {
  if (pos + 2 > end) throw new AudioInputError('corrupt', 'the MP4 esds box is cut short');
  const tag = b[pos]!;
  let len = 0;
  let p = pos + 1;
  for (let i = 0; i < 4; i++) {
    if (p >= end) throw new AudioInputError('corrupt', 'the MP4 esds box is cut short');
    const v = b[p++]!;
    len = (len << 7) | (v & 0x7f);
    if (!(v & 0x80)) break;
  }
  if (p + len > end) throw new AudioInputError('corrupt', 'the MP4 esds descriptor overruns its box');
  return { tag, body: p, end: p + len };
}

/** The AudioSpecificConfig and objectTypeIndication of an esds box. */
function parseEsds(b: Uint8Array, box: Box): { oti: number; asc: Uint8Array } {
  const es = descriptor(b, fullBoxBody(box), box.end);
  if (es.tag !== 3) throw new AudioInputError('corrupt', 'the MP4 esds box has no ES descriptor');
  let p = es.body + 2;
  if (p >= es.end) throw new AudioInputError('corrupt', 'the MP4 ES descriptor is cut short');
  const flags = b[p++]!;
  if (flags & 0x80) p += 2;
  if (flags & 0x40) p += 1 + (b[p] ?? 0);
  if (flags & 0x20) p += 2;
  const dc = descriptor(b, p, es.end);
  if (dc.tag !== 4 || dc.end - dc.body < 13) throw new AudioInputError('corrupt', 'the MP4 esds box has no decoder config');
  const oti = b[dc.body]!;
  const dsi = dc.end - dc.body > 13 ? descriptor(b, dc.body + 13, dc.end) : null;
  if (!dsi || dsi.tag !== 5 || dsi.end - dsi.body < 2) return { oti, asc: new Uint8Array(0) };
  return { oti, asc: b.slice(dsi.body, dsi.end) };
}

/** AAC object types FAAD2 decodes: Main, LC, LTP, HE-AAC (SBR), HE-AAC v2 (PS). */
const AAC_OBJECT_TYPES = new Set([1, 2, 4, 5, 29]);
/** MPEG-2 AAC (Main, LC, SSR) and MPEG-4 audio. */
const AAC_OTIS = new Set([0x40, 0x66, 0x67, 0x68]);

function audioObjectType(asc: Uint8Array): number {
  const aot = asc[0]! >> 3;
  return aot === 31 ? 32 + (((asc[0]! & 7) << 3) | (asc[1]! >> 5)) : aot;
}

/**
 * Parses an MP4/M4A to its AAC sound track. Throws AudioInputError: unsupported_format (no sound
 * track — "a video without an audio track" —, another codec, fragmented MP4), corrupt (sizes beyond
 * the file, missing tables), empty.
 */
export function parseMp4Aac(b: Uint8Array, fileLength = b.length): Mp4AacTrack {
  return parseGuarded('MP4', () => parseMp4AacUnguarded(b, fileLength));
}

/**
 * `fileLength`: the size of the file the boxes come from, when `b` holds its boxes but not its media
 * data (rest's streamed upload keeps ftyp and moov only, rest/src/ingest/probe.ts): samples are
 * checked against it. The sample tables (`offsets`) then point into that file, not into `b`.
 */
function parseMp4AacUnguarded(b: Uint8Array, fileLength: number): Mp4AacTrack {
  if (!isMp4(b)) throw new AudioInputError('unsupported_format', 'not an MP4 file (no ftyp box)');
  const image = mp4BrandName(b);
  if (image) throw new AudioInputError('unsupported_format', `the file is ${image}, not audio`);
  const counter = { n: 0 };
  const top = boxes(b, 0, b.length, counter);
  const moov = child(top, 'moov');
  if (!moov) {
    throw new AudioInputError('corrupt', child(top, 'mdat') ? 'the MP4 has no moov box (its recording was never finished, or the file is truncated)' : 'the MP4 has no moov box');
  }
  const moovKids = boxes(b, moov.body, moov.end, counter);
  if (child(moovKids, 'mvex') || child(top, 'moof')) {
    throw new AudioInputError('unsupported_format', 'the file is a fragmented MP4 (DASH/CMAF segments); M4A/MP4 files are taken unfragmented');
  }
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const mvhd = child(moovKids, 'mvhd');
  const movieTimescale = mvhd ? (b[mvhd.body] === 1 ? view.getUint32(mvhd.body + 20) : view.getUint32(mvhd.body + 12)) : 0;
  const kinds: string[] = [];
  for (const trak of moovKids.filter((x) => x.type === 'trak')) {
    const trakKids = boxes(b, trak.body, trak.end, counter);
    const mdia = child(trakKids, 'mdia');
    if (!mdia) continue;
    const mdiaKids = boxes(b, mdia.body, mdia.end, counter);
    const hdlr = child(mdiaKids, 'hdlr');
    const handler = hdlr && hdlr.body + 12 <= hdlr.end ? String.fromCharCode(...b.subarray(hdlr.body + 8, hdlr.body + 12)) : '';
    kinds.push(handler);
    if (handler !== 'soun') continue;
    return parseSoundTrack(b, view, trakKids, mdiaKids, movieTimescale, counter, fileLength);
  }
  if (kinds.includes('vide')) throw new AudioInputError('unsupported_format', 'the file is a video without an audio track');
  throw new AudioInputError('unsupported_format', 'the file is an MP4 without an audio track');
}

function parseSoundTrack(b: Uint8Array, view: DataView, trakKids: Box[], mdiaKids: Box[], movieTimescale: number, counter: { n: number }, fileLength: number): Mp4AacTrack {
  const mdhd = child(mdiaKids, 'mdhd');
  if (!mdhd || mdhd.end - mdhd.body < 24) throw new AudioInputError('corrupt', 'the MP4 sound track has no media header');
  const v1 = b[mdhd.body] === 1;
  const timescale = view.getUint32(mdhd.body + (v1 ? 20 : 12));
  const mediaDuration = v1 ? view.getUint32(mdhd.body + 24) * 2 ** 32 + view.getUint32(mdhd.body + 28) : view.getUint32(mdhd.body + 16);
  if (timescale === 0) throw new AudioInputError('corrupt', 'the MP4 sound track has a timescale of 0');
  const minf = child(mdiaKids, 'minf');
  const stblBox = minf ? child(boxes(b, minf.body, minf.end, counter), 'stbl') : undefined;
  if (!stblBox) throw new AudioInputError('corrupt', 'the MP4 sound track has no sample table');
  const stbl = boxes(b, stblBox.body, stblBox.end, counter);
  const stsd = child(stbl, 'stsd');
  if (!stsd || stsd.end - stsd.body < 16) throw new AudioInputError('corrupt', 'the MP4 sound track has no sample description');
  const [entry] = boxes(b, stsd.body + 8, stsd.end, counter);
  if (!entry) throw new AudioInputError('corrupt', 'the MP4 sound track has an empty sample description');
  if (entry.type !== 'mp4a') throw new AudioInputError('unsupported_format', `the file is an M4A/MP4 with ${sampleEntryName(entry.type)} audio; M4A/MP4 files are taken with AAC`);
  if (entry.body + 28 > entry.end) throw new AudioInputError('corrupt', 'the MP4 audio sample entry is cut short');
  const qtVersion = view.getUint16(entry.body + 8);
  const channels = view.getUint16(entry.body + 16);
  const entryRate = view.getUint32(entry.body + 24) >>> 16;
  const childrenAt = entry.body + 28 + (qtVersion === 1 ? 16 : qtVersion === 2 ? 36 : 0);
  if (childrenAt > entry.end) throw new AudioInputError('corrupt', 'the MP4 audio sample entry is cut short');
  let entryKids = boxes(b, childrenAt, entry.end, counter);
  const wave = child(entryKids, 'wave'); // QuickTime puts esds inside a wave box
  if (wave) entryKids = boxes(b, wave.body, wave.end, counter);
  const esds = child(entryKids, 'esds');
  if (!esds) throw new AudioInputError('corrupt', 'the MP4 AAC track has no esds box (no decoder configuration)');
  const { oti, asc } = parseEsds(b, esds);
  if (oti === 0x69 || oti === 0x6b) throw new AudioInputError('unsupported_format', 'the file is an MP4 with MP3 audio; M4A/MP4 files are taken with AAC');
  if (!AAC_OTIS.has(oti)) throw new AudioInputError('unsupported_format', `the file is an MP4 with audio of object type 0x${oti.toString(16)}; M4A/MP4 files are taken with AAC`);
  if (asc.length < 2) throw new AudioInputError('corrupt', 'the MP4 AAC track has no AudioSpecificConfig');
  const aot = audioObjectType(asc);
  if (!AAC_OBJECT_TYPES.has(aot)) throw new AudioInputError('unsupported_format', `the file is an M4A with MPEG-4 audio object type ${aot}; AAC Main, LC, LTP and HE-AAC (v1, v2) are taken`);
  const ascChannels = (asc[1]! >> 3) & 0x0f;
  const ch = ascChannels || channels;
  if (ch > 2) throw new AudioInputError('unsupported_format', `the file is an M4A with ${ch} channels; only mono and stereo are taken`);
  if (ch === 0) throw new AudioInputError('corrupt', 'the MP4 AAC track declares 0 channels');

  if (entryRate === 0) throw new AudioInputError('corrupt', 'the MP4 audio sample entry declares a sample rate of 0 Hz');
  const table = checkSampleTable(b, view, stbl, fileLength);
  if (table.count === 0) throw new AudioInputError('empty', 'the M4A holds no audio (no samples in its sound track)');
  let duration = mediaDuration;
  if (!duration) {
    const stts = child(stbl, 'stts');
    if (stts) duration = sttsTotal(view, stts);
  }
  // What the units decode to: an AAC access unit is 1,024 samples at the core rate (2,048 at twice
  // the rate with SBR: the same time). Never longer than the truth; the header may only add to it.
  const unitsSec = (table.count * AAC_FRAME) / entryRate;
  const edts = child(trakKids, 'edts');
  let built: { offsets: Float64Array; sizes: Uint32Array } | null = null;
  const tables = (): { offsets: Float64Array; sizes: Uint32Array } => (built ??= buildSampleTable(b, view, table));
  return {
    asc,
    channels: ch as 1 | 2,
    sampleRate: entryRate,
    timescale,
    durationSec: Math.max(duration / timescale, unitsSec),
    units: table.count,
    get offsets() {
      return tables().offsets;
    },
    get sizes() {
      return tables().sizes;
    },
    gapless: edts ? editWindow(b, view, boxes(b, edts.body, edts.end, counter), timescale, movieTimescale) : null,
  };
}

/** Samples one AAC access unit decodes to (per channel, at the core rate). */
const AAC_FRAME = 1024;

function sttsTotal(view: DataView, stts: Box): number {
  const count = view.getUint32(stts.body + 4);
  if (stts.body + 8 + count * 8 > stts.end) throw new AudioInputError('corrupt', 'the MP4 time-to-sample table overruns its box');
  let total = 0;
  for (let i = 0; i < count; i++) total += view.getUint32(stts.body + 8 + i * 8) * view.getUint32(stts.body + 12 + i * 8);
  return total;
}

/** The one media edit of an edit list, as { start, duration } seconds of media time (nothing collected per entry). */
function editWindow(b: Uint8Array, view: DataView, edtsKids: Box[], timescale: number, movieTimescale: number): Mp4AacTrack['gapless'] {
  const elst = child(edtsKids, 'elst');
  if (!elst || elst.end - elst.body < 8) return null;
  const v1 = b[elst.body] === 1;
  const count = view.getUint32(elst.body + 4);
  const size = v1 ? 20 : 12;
  if (elst.body + 8 + count * size > elst.end) throw new AudioInputError('corrupt', 'the MP4 edit list overruns its box');
  let media: { start: number; duration: number } | null = null;
  for (let i = 0; i < count; i++) {
    const at = elst.body + 8 + i * size;
    const segment = v1 ? view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4) : view.getUint32(at);
    const mediaTime = v1 ? view.getInt32(at + 8) * 2 ** 32 + view.getUint32(at + 12) : view.getInt32(at + 4);
    if (mediaTime < 0) continue;
    if (media) return null; // more than one media edit: no gapless window
    media = { start: mediaTime, duration: segment };
  }
  if (!media || movieTimescale === 0) return null;
  return { start: media.start / timescale, ...(media.duration > 0 ? { duration: media.duration / movieTimescale } : {}) };
}

/** Where the sample table's parts are, once checked against the file. */
interface SampleTable {
  count: number;
  /** The one size of every sample (stsz), 0 when each has its own entry. */
  fixed: number;
  stsz: Box;
  stco: Box;
  co64: boolean;
  chunks: number;
  stsc: Box;
  runs: number;
}

/**
 * Checks stsz/stz2, stco/co64 and stsc against the file without allocating: every table fits its
 * box, and every sample lies inside the file. The work is bounded by the bytes present: one step per
 * size entry (4 bytes each), chunk (4 or 8) and run (12); a fixed sample size makes a chunk one step.
 */
function checkSampleTable(b: Uint8Array, view: DataView, stbl: Box[], fileLength: number): SampleTable {
  const stsz = child(stbl, 'stsz');
  const stco = child(stbl, 'stco') ?? child(stbl, 'co64');
  const stsc = child(stbl, 'stsc');
  if (!stsz || !stco || !stsc) throw new AudioInputError('corrupt', 'the MP4 sound track lacks its sample size, chunk offset or sample-to-chunk table');
  if (stsz.end - stsz.body < 12) throw new AudioInputError('corrupt', 'the MP4 sample size table is cut short');
  const fixed = view.getUint32(stsz.body + 4);
  const count = view.getUint32(stsz.body + 8);
  if (fixed === 0 && stsz.body + 12 + count * 4 > stsz.end) throw new AudioInputError('corrupt', 'the MP4 sample size table overruns its box');
  // Each sample takes at least one byte of the file (all of them `fixed` bytes): a larger count is a lie.
  if (count * Math.max(1, fixed) > fileLength) throw new AudioInputError('corrupt', `the MP4 claims ${count} samples of ${fixed || 'at least 1'} bytes in ${fileLength} bytes`);
  const co64 = stco.type === 'co64';
  if (stco.end - stco.body < 8 || stsc.end - stsc.body < 8) throw new AudioInputError('corrupt', 'the MP4 chunk tables are cut short');
  const chunks = view.getUint32(stco.body + 4);
  if (stco.body + 8 + chunks * (co64 ? 8 : 4) > stco.end) throw new AudioInputError('corrupt', 'the MP4 chunk offset table overruns its box');
  const runs = view.getUint32(stsc.body + 4);
  if (stsc.body + 8 + runs * 12 > stsc.end) throw new AudioInputError('corrupt', 'the MP4 sample-to-chunk table overruns its box');
  const table: SampleTable = { count, fixed, stsz, stco, co64, chunks, stsc, runs };
  const placed = placeSamples(view, table, null, fileLength);
  if (placed < count) throw new AudioInputError('corrupt', `the MP4 chunk tables place ${placed} of its ${count} samples`);
  return table;
}

/**
 * Walks the chunks in decoding order, checking that every sample lies inside the file; with `out`,
 * writes each sample's offset and size. Returns how many samples the chunks place.
 */
function placeSamples(view: DataView, t: SampleTable, out: { offsets: Float64Array; sizes: Uint32Array } | null, fileLength: number): number {
  const sizeAt = (i: number): number => t.fixed || view.getUint32(t.stsz.body + 12 + i * 4);
  let sample = 0;
  for (let r = 0; r < t.runs && sample < t.count; r++) {
    const firstChunk = view.getUint32(t.stsc.body + 8 + r * 12);
    const perChunk = view.getUint32(t.stsc.body + 12 + r * 12);
    const nextFirst = r + 1 < t.runs ? view.getUint32(t.stsc.body + 8 + (r + 1) * 12) : t.chunks + 1;
    if (firstChunk < 1 || nextFirst < firstChunk || nextFirst > t.chunks + 1) throw new AudioInputError('corrupt', 'the MP4 sample-to-chunk table is inconsistent');
    for (let c = firstChunk; c < nextFirst && sample < t.count; c++) {
      const at = t.stco.body + 8 + (c - 1) * (t.co64 ? 8 : 4);
      const start = t.co64 ? view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4) : view.getUint32(at);
      const n = Math.min(perChunk, t.count - sample);
      if (t.fixed && !out) {
        // One step for the whole chunk.
        if (start + n * t.fixed > fileLength) throw truncated(sample + Math.max(0, Math.floor((fileLength - start) / t.fixed)), start, t.fixed, fileLength);
        sample += n;
        continue;
      }
      let off = start;
      for (let k = 0; k < n; k++, sample++) {
        const size = sizeAt(sample);
        if (off + size > fileLength) throw truncated(sample, off, size, fileLength);
        if (out) {
          out.offsets[sample] = off;
          out.sizes[sample] = size;
        }
        off += size;
      }
    }
  }
  return sample;
}

function truncated(sample: number, off: number, size: number, length: number): AudioInputError {
  return new AudioInputError('corrupt', `the M4A is truncated: audio sample ${sample} lies at bytes ${off}–${off + size}, the file has ${length}`);
}

/** Byte offset and size of every sample, from a table checkSampleTable has accepted. */
function buildSampleTable(b: Uint8Array, view: DataView, t: SampleTable): { offsets: Float64Array; sizes: Uint32Array } {
  const out = { offsets: new Float64Array(t.count), sizes: new Uint32Array(t.count) };
  placeSamples(view, t, out, b.length);
  return out;
}
