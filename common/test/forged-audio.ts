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
