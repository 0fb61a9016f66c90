import { decoder as aacDecoder } from '@audio/decode-aac';
import { AudioInputError, type Mp4AacTrack } from '@msaas/common';
import type { BlockSource, DecodedBlock } from './decode-stream.ts';

/** AAC access units decoded per step (1,024 samples each, 2,048 with SBR): ~0.75 s of audio. */
const UNITS_PER_STEP = 32;

/**
 * The AAC track of an M4A/MP4 (FAAD2 in wasm, @audio/decode-aac), fed the access units that
 * mp4-boxes located, a few at a time, with the edit list's gapless window applied.
 */
export async function mp4AacSource(bytes: Uint8Array, track: Mp4AacTrack): Promise<BlockSource> {
  let dec: Awaited<ReturnType<typeof aacDecoder>>;
  try {
    dec = await aacDecoder({ asc: track.asc, ...(track.gapless ? { gapless: track.gapless } : {}) });
  } catch (err) {
    throw new AudioInputError('corrupt', 'the M4A\'s AAC configuration (AudioSpecificConfig) is not decodable', { cause: err });
  }
  let unit = 0;
  let flushed = false;
  let freed = false;
  return {
    async next(): Promise<DecodedBlock | null> {
      if (unit < track.sizes.length) {
        const end = Math.min(track.sizes.length, unit + UNITS_PER_STEP);
        const units: Uint8Array[] = [];
        for (let i = unit; i < end; i++) units.push(bytes.subarray(track.offsets[i]!, track.offsets[i]! + track.sizes[i]!));
        unit = end;
        const r = dec.decode(units);
        return { channelData: r.channelData, sampleRate: r.sampleRate || track.sampleRate };
      }
      if (flushed) return null;
      flushed = true;
      const r = dec.flush();
      return { channelData: r.channelData, sampleRate: r.sampleRate || track.sampleRate };
    },
    close() {
      if (freed) return;
      freed = true;
      dec.free();
    },
  };
}
