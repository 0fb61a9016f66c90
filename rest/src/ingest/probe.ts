import {
  AudioInputError,
  ascii,
  flacStart,
  id3v2TagSize,

  parseFlac,
  parseFrameHeader,
  parseOgg,
  parseMp4Aac,
  parseWav,
  probeAudio,
  scanMp3,
  sideInfoBytes,
  type AudioFormat,
  type FrameHeader,
} from '@msaas/common';

/**
 * The length of an upload that streams past rest (issue 24 item 1), from what a few hundred KiB
 * of it say: the same parsers as a whole upload (common/src/audio-format.ts), fed the header, the
 * frames or the last page as they pass. What each format allows:
 * - WAV: the data chunk's size in the header → checked before the body is stored;
 * - FLAC: STREAMINFO's total samples → checked before the body is stored;
 * - MP3: a pass over the frame headers as the bytes go by (no frame kept);
 * - Ogg: the first page's codec header and the last page's granule;
 * - M4A: its top-level boxes but the media data (ftyp, moov: where the moov is, first or last), parsed
 *   with the file's size for the sample tables' bounds.
 * Uploads up to WHOLE_PROBE_BYTES are kept whole and probed exactly as the lab's JSON path probes.
 */

/** The window read before anything is stored: the sniff, a WAV/FLAC header, an Ogg's first page. */
export const HEAD_BYTES = 256 * 1024;
/** Uploads up to this size are also kept whole and probed by the whole-file parsers. */
export const WHOLE_PROBE_BYTES = 2 * 1024 * 1024;
/** The end kept for an Ogg's last page (a page is at most 65 307 bytes). */
const OGG_TAIL_BYTES = 128 * 1024;

/**
 * The audio's length from whole bytes (the JSON path, and small streamed uploads): a WAV/FLAC/Ogg/M4A
 * whose header is broken is an AudioInputError for the caller to refuse; an MP3 the frame scan
 * refuses counts as 0, as it always has (the worker fails it at its first attempt with the reason).
 */
export function wholeSeconds(bytes: Uint8Array, format: AudioFormat): number {
  try {
    return format === 'mp3' ? scanMp3(bytes).durationSec : (probeAudio(bytes).durationSec ?? 0);
  } catch (err) {
    if (format === 'mp3' && err instanceof AudioInputError) return 0;
    throw err;
  }
}

interface WavHead {
  /** Seconds the header's data size states, or null when it states none (0 or 0xFFFFFFFF: a writer that streamed). */
  seconds: number | null;
  dataStart: number;
  dataSize: number;
  blockAlign: number;
  sampleRate: number;
}

/**
 * A WAV's format and data size from its first bytes. The format chunk is judged by parseWav itself
 * (fed the header with the data size cut to what the window holds), the length from the data size.
 */
function wavHead(head: Uint8Array): WavHead | null {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let pos = 12;
  while (pos + 8 <= head.length) {
    const size = view.getUint32(pos + 4, true);
    if (ascii(head, pos, 'data')) {
      const dataStart = pos + 8;
      const available = head.length - dataStart;
      const patched = Uint8Array.from(head);
      const shown = Math.min(size === 0 || size === 0xffffffff ? available : size, available);
      new DataView(patched.buffer).setUint32(pos + 4, shown, true);
      const info = parseWav(patched);
      const known = size !== 0 && size !== 0xffffffff;
      return { seconds: known ? Math.floor(size / info.blockAlign) / info.sampleRate : null, dataStart, dataSize: size, blockAlign: info.blockAlign, sampleRate: info.sampleRate };
    }
    pos += 8 + size + (size & 1);
  }
  return null;
}

/**
 * Counts an MP3's frames and samples as its bytes pass, keeping only the few bytes of a header cut
 * by a chunk boundary: ID3v2 tags skipped, the first frame found as scanMp3 finds it (a header whose
 * next frame follows where it says), a Xing/Info frame not counted as audio, lost sync searched
 * byte by byte for the next header of the same stream.
 */
class Mp3FrameCounter {
  private carry: Uint8Array = new Uint8Array(0);
  private skip = 0;
  private first: FrameHeader | null = null;
  private samples = 0;
  private xingSamples = 0;
  private atStart = true;

  feed(chunk: Uint8Array): void {
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length - pos);
        pos += n;
        this.skip -= n;
        if (this.skip > 0) break;
      }
      if (this.atStart) {
        if (pos + 10 > buf.length) break;
        const tag = id3v2TagSize(buf, pos);
        if (tag > 0) {
          this.skip = tag;
          continue;
        }
        this.atStart = false;
      }
      if (pos + 4 > buf.length) break;
      const h = parseFrameHeader(buf, pos);
      if (h && this.first === null) {
        // The first frame: its successor must start where it says (a false sync in junk rarely does).
        if (pos + h.length + 4 > buf.length) break;
        const next = parseFrameHeader(buf, pos + h.length);
        if (next && sameStream(h, next)) {
          this.first = h;
          const at = pos + 4 + sideInfoBytes(h);
          if (ascii(buf, at, 'Xing') || ascii(buf, at, 'Info')) this.xingSamples = h.samples;
        } else {
          pos++;
          continue;
        }
      }
      if (h && this.first && sameStream(this.first, h)) {
        this.samples += h.samples;
        this.skip = h.length;
        continue;
      }
      pos++;
    }
    this.carry = pos < buf.length ? Uint8Array.from(buf.subarray(pos)) : new Uint8Array(0);
  }

  seconds(): number {
    if (!this.first) return 0;
    return Math.max(0, this.samples - this.xingSamples) / this.first.sampleRate;
  }
}

function sameStream(a: FrameHeader, b: FrameHeader): boolean {
  return a.versionBits === b.versionBits && a.layer === b.layer && a.sampleRate === b.sampleRate;
}

/** The bytes of the Ogg page at 0 (its header, lacing table and body), or null when the window cuts it. */
function oggFirstPage(head: Uint8Array): Uint8Array | null {
  if (head.length < 27) return null;
  const segments = head[26]!;
  let len = 27 + segments;
  if (len > head.length) return null;
  for (let i = 0; i < segments; i++) len += head[27 + i]!;
  return len <= head.length ? head.subarray(0, len) : null;
}

/** The last whole Ogg page of `tail` (one that ends exactly at its end). */
function oggLastPage(tail: Uint8Array): Uint8Array | null {
  for (let at = tail.length - 27; at >= 0; at--) {
    if (!ascii(tail, at, 'OggS')) continue;
    const segments = tail[at + 26]!;
    if (at + 27 + segments > tail.length) continue;
    let len = 27 + segments;
    for (let i = 0; i < segments; i++) len += tail[at + 27 + i]!;
    if (at + len === tail.length) return tail.subarray(at);
  }
  return null;
}

/** The formats whose end tells their length: an Ogg's last granule, a FLAC's last frame number. */
const keepsTail = (format: AudioFormat): boolean => format === 'ogg-vorbis' || format === 'ogg-opus' || format === 'flac';

/** How much of an upload is read before anything is stored: HEAD_BYTES past any ID3v2 tag (an MP3's cover art comes first), up to 16 MiB of tag. */
export function headWindow(start: Uint8Array): number {
  return HEAD_BYTES + Math.min(id3v2TagSize(start, 0), 16 * 1024 * 1024);
}

/** The most an M4A's boxes other than its media data (the moov's sample tables) may take. */
export const MP4_BOXES_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Keeps an MP4's top-level boxes as they pass, but not its media data (`mdat`, `free`, `skip`): the
 * moov's tables point into the whole file, and parseMp4Aac checks them against its size.
 */
class Mp4BoxKeeper {
  private pending: Uint8Array = new Uint8Array(0);
  /** Bytes of the current box still to come, and whether they are kept. */
  private left = 0;
  private keeping = false;
  private toEnd = false;
  private readonly kept: Uint8Array[] = [];
  private keptBytes = 0;

  feed(chunk: Uint8Array): void {
    let buf = chunk;
    for (;;) {
      if (this.left > 0 || this.toEnd) {
        const n = this.toEnd ? buf.length : Math.min(this.left, buf.length);
        if (this.keeping) this.keep(buf.subarray(0, n));
        if (!this.toEnd) this.left -= n;
        buf = buf.subarray(n);
        if (buf.length === 0) return;
        continue;
      }
      // A box header: 8 bytes, 16 with a 64-bit size.
      const head = this.pending.length ? Buffer.concat([this.pending, buf]) : buf;
      if (head.length < 8) {
        this.pending = Uint8Array.from(head);
        return;
      }
      const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
      let size = view.getUint32(0);
      let headerLen = 8;
      if (size === 1) {
        if (head.length < 16) {
          this.pending = Uint8Array.from(head);
          return;
        }
        size = view.getUint32(8) * 2 ** 32 + view.getUint32(12);
        headerLen = 16;
      }
      const type = String.fromCharCode(head[4]!, head[5]!, head[6]!, head[7]!);
      this.keeping = type !== 'mdat' && type !== 'free' && type !== 'skip' && type !== 'wide';
      if (size !== 0 && size < headerLen) throw new AudioInputError('corrupt', `the MP4 box "${type.replace(/[^\x20-\x7e]/g, '?')}" declares a size of ${size} bytes`);
      const headerBytes = head.subarray(0, headerLen);
      if (this.keeping) this.keep(headerBytes);
      // A box past the media data keeps its header only (a fragment, a tag): the parser sees what it is.
      else if (type === 'mdat') this.keep(Uint8Array.from([0, 0, 0, 8, 0x6d, 0x64, 0x61, 0x74]));
      this.toEnd = size === 0;
      this.left = size === 0 ? 0 : size - headerLen;
      this.pending = new Uint8Array(0);
      buf = head.subarray(headerLen);
      if (buf.length === 0 && !this.toEnd && this.left > 0) return;
    }
  }

  private keep(bytes: Uint8Array): void {
    this.keptBytes += bytes.length;
    if (this.keptBytes > MP4_BOXES_MAX_BYTES) throw new AudioInputError('corrupt', `the MP4's boxes besides its media data are over ${MP4_BOXES_MAX_BYTES / 2 ** 20} MiB`);
    this.kept.push(Uint8Array.from(bytes));
  }

  boxes(): Uint8Array {
    return Buffer.concat(this.kept);
  }
}

/**
 * One streamed upload's length probe: `head` is the first HEAD_BYTES (or the whole upload when it is
 * shorter), `feed` gets every later chunk, `seconds` the total at the end. Throws AudioInputError as
 * the whole-file parsers do.
 */
export class StreamProbe {
  /** Seconds the header states, known before the body is stored (WAV, FLAC), else null. */
  readonly headerSeconds: number | null;
  private whole: Uint8Array[] | null;
  private wholeBytes: number;
  private readonly mp3: Mp3FrameCounter | null;
  private readonly mp4: Mp4BoxKeeper | null;
  private tail: Uint8Array[] = [];
  private tailBytes = 0;
  private readonly wav: WavHead | null = null;

  constructor(
    private readonly head: Uint8Array,
    readonly format: AudioFormat,
    /** Uploads up to this size are probed whole (tests set 0 to probe small files as streams). */
    private readonly wholeMax = WHOLE_PROBE_BYTES,
  ) {
    this.whole = head.length <= wholeMax ? [head] : null;
    this.wholeBytes = head.length;
    this.mp3 = format === 'mp3' ? new Mp3FrameCounter() : null;
    this.mp3?.feed(head);
    this.mp4 = format === 'mp4-aac' ? new Mp4BoxKeeper() : null;
    this.mp4?.feed(head);
    if (keepsTail(format)) this.keepTail(head);
    if (format === 'wav') {
      this.wav = wavHead(head);
      this.headerSeconds = this.wav?.seconds ?? null;
    } else if (format === 'flac') {
      this.headerSeconds = flacHeaderSeconds(head);
    } else this.headerSeconds = null;
  }

  feed(chunk: Uint8Array): void {
    if (this.whole) {
      this.wholeBytes += chunk.length;
      if (this.wholeBytes <= this.wholeMax) this.whole.push(chunk);
      else this.whole = null;
    }
    this.mp3?.feed(chunk);
    this.mp4?.feed(chunk);
    if (keepsTail(this.format)) this.keepTail(chunk);
  }

  private keepTail(chunk: Uint8Array): void {
    this.tail.push(Uint8Array.from(chunk));
    this.tailBytes += chunk.length;
    while (this.tail.length > 1 && this.tailBytes - this.tail[0]!.length >= OGG_TAIL_BYTES) this.tailBytes -= this.tail.shift()!.length;
  }

  /** The audio's length once every byte (`size` of them) went by. */
  seconds(size: number): number {
    if (this.whole) return wholeSeconds(Buffer.concat(this.whole), this.format);
    switch (this.format) {
      case 'mp3':
        return this.mp3!.seconds();
      case 'wav': {
        const w = this.wav;
        if (!w) throw new AudioInputError('corrupt', 'the WAV has no data chunk within its first 256 KiB');
        const available = size - w.dataStart;
        if (w.seconds !== null && w.dataSize > available) {
          throw new AudioInputError('corrupt', `the WAV is truncated: its data chunk promises ${w.dataSize} bytes, the file holds ${available}`);
        }
        return w.seconds ?? Math.floor(available / w.blockAlign) / w.sampleRate;
      }
      case 'flac': {
        if (this.headerSeconds !== null) return this.headerSeconds;
        // No total in STREAMINFO (a streaming encoder): the last frame's number, from the end kept.
        const tail = Buffer.concat(this.tail);
        return parseFlac(Buffer.concat([this.head.subarray(0, Math.min(this.head.length, size - tail.length)), tail])).durationSec ?? 0;
      }
      case 'ogg-vorbis':
      case 'ogg-opus': {
        const first = oggFirstPage(this.head);
        const last = oggLastPage(Buffer.concat(this.tail));
        if (!first || !last) throw new AudioInputError('corrupt', 'the Ogg file has no whole first or last page');
        return parseOgg(Buffer.concat([first, last])).durationSec;
      }
      case 'mp4-aac':
        return parseMp4Aac(this.mp4!.boxes(), size).durationSec;
    }
  }
}

/** A FLAC's length from STREAMINFO in the window; null when its metadata (a large picture) runs past the window. */
function flacHeaderSeconds(head: Uint8Array): number | null {
  if (flacStart(head) < 0) return null;
  try {
    const f = parseFlac(head);
    // STREAMINFO's total only: parseFlac's fallback (the last frame's number) would be the window's last frame.
    return f.totalSamples > 0 ? f.totalSamples / f.sampleRate : null;
  } catch (err) {
    if (head.length >= HEAD_BYTES && err instanceof AudioInputError && /truncated/.test(err.message)) return null;
    throw err;
  }
}

