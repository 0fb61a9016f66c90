import { FLACDecoder } from '@wasm-audio-decoders/flac';
import { AudioInputError, type FlacInfo } from '@msaas/common';
import type { BlockSource, DecodedBlock } from './decode-stream.ts';

/**
 * Compressed bytes fed per step. Small, because FLAC expands without bound on constant input: a
 * 12-byte frame can hold 65,535 silent samples, so 4 KB of hostile frames could decode to 170 MB
 * in one call; 1 KB caps one step at ~45 MB and real music at ~10 KB of PCM.
 */
const FEED_BYTES = 1024;

/** FLAC (libFLAC in wasm, @wasm-audio-decoders/flac) fed a slice at a time. */
export async function flacSource(bytes: Uint8Array, info: FlacInfo): Promise<BlockSource> {
  const decoder = new FLACDecoder();
  await decoder.ready;
  let pos = info.streamStart;
  let flushed = false;
  let decoded = 0;
  let freed = false;
  const check = (r: { errors: Array<{ message: string; frameNumber?: number }>; samplesDecoded: number }): void => {
    if (r.errors.length > 0) {
      const e = r.errors[0]!;
      throw new AudioInputError('corrupt', `the FLAC is corrupt: ${e.message}${e.frameNumber !== undefined ? ` (frame ${e.frameNumber})` : ''}`);
    }
    decoded += r.samplesDecoded;
  };
  return {
    async next(): Promise<DecodedBlock | null> {
      if (pos < bytes.length) {
        const end = Math.min(bytes.length, pos + FEED_BYTES);
        const r = await decoder.decode(bytes.subarray(pos, end));
        pos = end;
        check(r);
        return { channelData: r.channelData, sampleRate: r.sampleRate || info.sampleRate };
      }
      if (flushed) return null;
      flushed = true;
      const r = await decoder.flush();
      check(r);
      // libFLAC skips what it cannot sync to without reporting it: fewer samples than the header (or the last frame) promises is damage.
      if (info.expectedSamples > 0 && decoded + info.maxBlockSize < info.expectedSamples) {
        const what = info.totalSamples > 0 ? 'its header promises' : 'its last frame ends at';
        throw new AudioInputError('corrupt', `the FLAC is truncated or damaged: ${what} ${info.expectedSamples} samples, its frames decode to ${decoded}`);
      }
      if (decoded === 0) throw new AudioInputError('empty', 'the FLAC holds no audio');
      return { channelData: r.channelData, sampleRate: r.sampleRate || info.sampleRate };
    },
    close() {
      if (freed) return;
      freed = true;
      decoder.free();
    },
  };
}
