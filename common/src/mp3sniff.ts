/**
 * A cheap first look at uploaded bytes: an ID3v2 tag, or an MPEG audio frame header whose next
 * frame also starts where the header says. The worker's decoder makes the final judgement.
 */
const BITRATES_V1_L3 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const BITRATES_V2_L3 = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
const RATES: Record<number, number[]> = { 3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000] };

interface FrameHeader {
  length: number;
}

function frameAt(b: Uint8Array, i: number): FrameHeader | null {
  if (i + 4 > b.length || b[i] !== 0xff || (b[i + 1]! & 0xe0) !== 0xe0) return null;
  const version = (b[i + 1]! >> 3) & 3; // 3 = MPEG1, 2 = MPEG2, 0 = MPEG2.5
  const layer = (b[i + 1]! >> 1) & 3; // 1 = Layer III
  const bitrateIdx = b[i + 2]! >> 4;
  const rateIdx = (b[i + 2]! >> 2) & 3;
  const padding = (b[i + 2]! >> 1) & 1;
  if (version === 1 || layer !== 1 || bitrateIdx === 0 || bitrateIdx === 15 || rateIdx === 3) return null;
  const kbps = (version === 3 ? BITRATES_V1_L3 : BITRATES_V2_L3)[bitrateIdx]!;
  const rate = RATES[version]![rateIdx]!;
  const length = Math.floor(((version === 3 ? 144 : 72) * kbps * 1000) / rate) + padding;
  return length > 4 ? { length } : null;
}

export function looksLikeMp3(bytes: Uint8Array): boolean {
  let start = 0;
  if (bytes.length >= 10 && bytes[0] === 0x49 && bytes[1] === 0x44 && bytes[2] === 0x33) {
    const size = ((bytes[6]! & 0x7f) << 21) | ((bytes[7]! & 0x7f) << 14) | ((bytes[8]! & 0x7f) << 7) | (bytes[9]! & 0x7f);
    start = 10 + size + (bytes[5]! & 0x10 ? 10 : 0);
  }
  // Look for two consecutive valid frames within the first 64 kB after the tag.
  const limit = Math.min(bytes.length, start + 65536);
  for (let i = start; i < limit; i++) {
    const f = frameAt(bytes, i);
    if (f && (i + f.length === bytes.length || frameAt(bytes, i + f.length))) return true;
  }
  return false;
}
