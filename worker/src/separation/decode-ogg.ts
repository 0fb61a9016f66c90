import { OggVorbisDecoder } from '@wasm-audio-decoders/ogg-vorbis';
import { OggOpusDecoder } from 'ogg-opus-decoder';
import { AudioInputError, type OggInfo } from '@msaas/common';
import type { BlockSource, DecodedBlock } from './decode-stream.ts';

/**
 * Compressed bytes fed per step: small, so that a page of tiny packets (each decoding to up to
 * 120 ms) cannot expand to much in one call; real music gives ~40–80 KB of PCM per step.
 */
const FEED_BYTES = 2048;

interface OggDecoder {
  ready: Promise<void>;
  decode(data: Uint8Array): Promise<Decoded> | Decoded;
  flush(): Promise<Decoded>;
  free(): void;
}
interface Decoded {
  channelData: Float32Array[];
  samplesDecoded: number;
  sampleRate: number;
  errors: Array<{ message: string }>;
}

/** Ogg Vorbis (libvorbis) or Ogg Opus (libopus, 48 kHz out) in wasm, fed a slice at a time. */
export async function oggSource(bytes: Uint8Array, info: OggInfo): Promise<BlockSource> {
  const decoder: OggDecoder = info.codec === 'opus' ? new OggOpusDecoder() : new OggVorbisDecoder();
  await decoder.ready;
  const name = info.codec === 'opus' ? 'Ogg Opus' : 'Ogg Vorbis';
  let pos = 0;
  let flushed = false;
  let freed = false;
  let decoded = 0;
  const block = (r: Decoded): DecodedBlock => {
    if (r.errors.length > 0) throw new AudioInputError('corrupt', `the ${name} file is corrupt: ${r.errors[0]!.message}`);
    decoded += r.samplesDecoded;
    return { channelData: r.channelData.map((c) => c.subarray(0, r.samplesDecoded)), sampleRate: r.sampleRate || info.sampleRate };
  };
  return {
    async next(): Promise<DecodedBlock | null> {
      if (pos < bytes.length) {
        const end = Math.min(bytes.length, pos + FEED_BYTES);
        const r = await decoder.decode(bytes.subarray(pos, end));
        pos = end;
        return block(r);
      }
      if (flushed) return null;
      flushed = true;
      const out = block(await decoder.flush());
      if (decoded === 0) throw new AudioInputError('empty', `the ${name} file decodes to no audio`);
      return out;
    },
    close() {
      if (freed) return;
      freed = true;
      decoder.free();
    },
  };
}
