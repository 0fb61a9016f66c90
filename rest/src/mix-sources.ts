import { WAV_HEADER_BYTES, infoTagSamples } from '@msaas/common/audio-encode/index';
import { INSTRUMENTAL_PARTS, orderedStems, streamToBuffer, type Extension, type ObjectStore, type Stem } from '@msaas/common';

/**
 * The stems a mix of a song sums, from those it has: stems that do not overlap, so nothing is
 * counted twice. `instrumental` is drums + bass + other: with all three of those it is left out (the
 * parts give finer control), without them it stands for them (a `vocals,instrumental` song mixes
 * as a karaoke pair). Empty when the song has none.
 */
export function mixStems(have: readonly Stem[]): Stem[] {
  const parts = INSTRUMENTAL_PARTS.filter((p) => have.includes(p));
  const useInstrumental = have.includes('instrumental') && parts.length < INSTRUMENTAL_PARTS.length;
  return orderedStems(have.filter((s) => (s === 'instrumental' ? useInstrumental : !(useInstrumental && parts.includes(s as never)))));
}

/** Samples per channel of a stored stem, from its header (WAV size, FLAC STREAMINFO, MP3 Info tag); null if unknown. */
export async function stemSamples(store: ObjectStore, hash: string, stem: Stem, ext: Extension): Promise<number | null> {
  if (ext === 'wav') {
    const info = await store.statStem(hash, stem, ext);
    return info ? Math.floor((info.size - WAV_HEADER_BYTES) / 6) : null;
  }
  const head = await streamToBuffer(await store.getStem(hash, stem, { start: 0, end: ext === 'flac' ? 41 : 1023 }, ext));
  if (ext === 'flac') {
    if (head.length < 42 || head.toString('latin1', 0, 4) !== 'fLaC') return null;
    // STREAMINFO bytes 8..: total samples are the low 36 bits of bytes 21..25 (after the 4-byte marker and block header)
    const hi = head[21]! & 0x0f;
    return hi * 2 ** 32 + head.readUInt32BE(22);
  }
  return infoTagSamples(head);
}
