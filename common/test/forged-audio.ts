/**
 * Hostile rewrites of real encoder output (worker/fixtures/encode-formats.ts), for the parsers'
 * hardening tests: headers that claim more (or less) than the bytes hold.
 */

/** Offset of the first box of `type` on the path, walking moov/trak/mdia/minf/stbl; throws if absent. */
export function findBox(b: Uint8Array, path: readonly string[]): { at: number; size: number } {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let from = 0;
  let to = b.length;
  let found: { at: number; size: number } | null = null;
  for (const want of path) {
    found = null;
    for (let p = from; p + 8 <= to; ) {
      const size = view.getUint32(p);
      if (String.fromCharCode(b[p + 4]!, b[p + 5]!, b[p + 6]!, b[p + 7]!) === want) {
        found = { at: p, size };
        break;
      }
      if (size < 8) break;
      p += size;
    }
    if (!found) throw new Error(`no ${path.join('/')} box`);
    from = found.at + 8;
    to = found.at + found.size;
  }
  return found!;
}

const STBL = ['moov', 'trak', 'mdia', 'minf', 'stbl'];

/**
 * An M4A of `totalBytes` whose sample table claims one 1-byte AAC access unit for every byte after
 * the mdat's start (a fixed sample size of 1, one chunk): ~12 bytes of tables per declared sample
 * for a parser that builds them. `mediaSec` rewrites the media header's length (default: kept).
 */
export function forgeM4aSampleCount(m4a: Uint8Array, totalBytes: number, opts: { mediaSec?: number } = {}): Uint8Array {
  const out = new Uint8Array(totalBytes);
  out.set(m4a);
  const view = new DataView(out.buffer);
  // The rest of the file is one 'free' box (padding a parser skips).
  view.setUint32(m4a.length, totalBytes - m4a.length);
  out.set([0x66, 0x72, 0x65, 0x65], m4a.length + 4);
  const mdatBody = findBox(out, ['mdat']).at + 8;
  const count = totalBytes - mdatBody;
  const stsz = findBox(out, [...STBL, 'stsz']).at + 8;
  view.setUint32(stsz + 4, 1); // every sample 1 byte
  view.setUint32(stsz + 8, count);
  const stsc = findBox(out, [...STBL, 'stsc']).at + 8;
  view.setUint32(stsc + 4, 1); // one run: chunk 1 holds every sample
  view.setUint32(stsc + 8, 1);
  view.setUint32(stsc + 12, count);
  view.setUint32(stsc + 16, 1);
  const stco = findBox(out, [...STBL, 'stco']).at + 8;
  view.setUint32(stco + 4, 1);
  view.setUint32(stco + 8, mdatBody);
  if (opts.mediaSec !== undefined) {
    const mdhd = findBox(out, ['moov', 'trak', 'mdia', 'mdhd']).at + 8;
    if (out[mdhd] !== 0) throw new Error('a version-1 mdhd');
    view.setUint32(mdhd + 16, Math.round(opts.mediaSec * view.getUint32(mdhd + 12)));
  }
  return out;
}

/** A FLAC whose STREAMINFO states `totalSamples` (1: a header saying the song is 23 µs long). */
export function forgeFlacLength(flac: Uint8Array, totalSamples: number): Uint8Array {
  const out = flac.slice();
  const si = 8; // "fLaC", the block header, then STREAMINFO
  out[si + 13] = (out[si + 13]! & 0xf0) | Math.floor(totalSamples / 2 ** 32);
  new DataView(out.buffer).setUint32(si + 14, totalSamples >>> 0);
  return out;
}

/**
 * An Ogg file whose pages after the first audio page carry granule position -1 ("no packet ends
 * here"), CRCs made right: its length, read from the last granule, is that of the first audio page.
 * `crc` is the page checksum (oggPageCrc).
 */
export function forgeOggGranules(ogg: Uint8Array, crc: (b: Uint8Array, start: number, end: number) => number): Uint8Array {
  const out = ogg.slice();
  const view = new DataView(out.buffer);
  let audioPages = 0;
  for (let pos = 0; pos + 27 <= out.length; ) {
    const segments = out[pos + 26]!;
    const end = pos + 27 + segments + out.subarray(pos + 27, pos + 27 + segments).reduce((s, x) => s + x, 0);
    const granuleLo = view.getUint32(pos + 6, true);
    const granuleHi = view.getInt32(pos + 10, true);
    const granule = granuleHi * 2 ** 32 + granuleLo;
    if (granule > 0 && audioPages++ > 0) {
      view.setUint32(pos + 6, 0xffffffff, true);
      view.setUint32(pos + 10, 0xffffffff, true);
      view.setUint32(pos + 22, crc(out, pos, end), true);
    }
    pos = end;
  }
  return out;
}

/**
 * An M4A whose media header and time-to-sample table state no length (0), and whose sample entry
 * states `entryRate` Hz (the AudioSpecificConfig, which the decoder follows, keeps the true rate).
 */
export function forgeM4aNoLength(m4a: Uint8Array, entryRate: number): Uint8Array {
  const out = m4a.slice();
  const view = new DataView(out.buffer);
  const mdhd = findBox(out, ['moov', 'trak', 'mdia', 'mdhd']).at + 8;
  if (out[mdhd] !== 0) throw new Error('a version-1 mdhd');
  view.setUint32(mdhd + 16, 0);
  const stts = findBox(out, [...STBL, 'stts']).at + 8;
  for (let i = 0; i < view.getUint32(stts + 4); i++) view.setUint32(stts + 12 + i * 8, 0);
  const entry = findBox(out, [...STBL, 'stsd']).at + 16; // the first sample entry
  if (entryRate > 65535) throw new Error("a sample entry states at most 65,535 Hz (16.16 fixed point)");
  view.setUint32(entry + 8 + 24, entryRate * 65536);
  return out;
}
