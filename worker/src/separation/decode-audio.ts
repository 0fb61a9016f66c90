import {
  AudioInputError, AUDIO_FORMAT_NAMES, sniffAudioFormat, unsupportedFormatError, parseWav, parseFlac, parseOgg, parseMp4Aac, type AudioFormat,
} from '@msaas/common';
import { PcmStream, DEFAULT_MAX_DURATION_SEC, MODEL_SAMPLE_RATE, readWhole, type DecodeOptions } from './decode.ts';
import { BlockPcmStream, type BlockSource } from './decode-stream.ts';
import { wavSource } from './decode-wav.ts';
import { flacSource } from './decode-flac.ts';
import { oggSource } from './decode-ogg.ts';
import { mp4AacSource } from './decode-mp4.ts';
import { decodesFromStore, wholeUpload, windowed, type UploadSource } from './upload-source.ts';

/** Stereo 44.1 kHz PCM pulled from any supported format, a chunk at a time. */
export interface AudioStream {
  readonly format: AudioFormat;
  /** Estimated length at 44.1 kHz, from the container's header. */
  readonly estimatedSamples: number;
  read(dst: readonly Float32Array[], offset: number, count: number): number | Promise<number>;
  readonly done: boolean;
  close(): void;
}

function refuseTooLong(durationSec: number | null, max: number): void {
  if (durationSec !== null && durationSec > max) {
    throw new AudioInputError('too_long', `the song is ${Math.round(durationSec)} s long; the maximum is ${max} s`);
  }
}

function blockStream(format: AudioFormat, source: BlockSource, durationSec: number | null, max: number): AudioStream {
  const stream = new BlockPcmStream(source, Math.round((durationSec ?? 0) * MODEL_SAMPLE_RATE), max, AUDIO_FORMAT_NAMES[format]);
  return {
    format,
    estimatedSamples: stream.estimatedSamples,
    read: (dst, offset, count) => stream.read(dst, offset, count),
    get done() {
      return stream.done;
    },
    close: () => stream.close(),
  };
}

/**
 * Opens any supported upload for streaming decode: the format is told by content
 * (common/src/audio-format.ts), its header parser validates it and gives the length, and an
 * over-long song is refused before anything is decoded. Throws AudioInputError.
 */
export async function openAudioStream(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<AudioStream> {
  const max = opts.maxDurationSec ?? DEFAULT_MAX_DURATION_SEC;
  if (bytes.length === 0) throw new AudioInputError('empty', 'the file is empty (0 bytes)');
  const sniffed = sniffAudioFormat(bytes);
  if (sniffed.format === null) throw unsupportedFormatError(sniffed.found);
  switch (sniffed.format) {
    case 'mp3': {
      const s = await PcmStream.open(bytes, opts);
      return {
        format: 'mp3',
        estimatedSamples: s.estimatedSamples,
        read: (dst, offset, count) => s.read(dst, offset, count),
        get done() {
          return s.done;
        },
        close: () => s.close(),
      };
    }
    case 'wav': {
      const info = parseWav(bytes);
      refuseTooLong(info.durationSec, max);
      return blockStream('wav', wavSource(bytes, info), info.durationSec, max);
    }
    case 'flac': {
      const info = parseFlac(bytes);
      refuseTooLong(info.durationSec, max);
      return blockStream('flac', await flacSource(bytes, info), info.durationSec, max);
    }
    case 'ogg-vorbis':
    case 'ogg-opus': {
      const info = parseOgg(bytes);
      refuseTooLong(info.durationSec, max);
      return blockStream(info.codec === 'opus' ? 'ogg-opus' : 'ogg-vorbis', await oggSource(bytes, info), info.durationSec, max);
    }
    case 'mp4-aac': {
      const track = parseMp4Aac(bytes);
      refuseTooLong(track.durationSec, max);
      return blockStream('mp4-aac', await mp4AacSource(bytes, track), track.durationSec, max);
    }
  }
}

/**
 * Opens a stored upload for streaming decode: a WAV whose header is in the upload's head is read
 * from the store as it decodes (a window at a time: memory does not grow with the file); anything
 * else is read whole and opened by openAudioStream, as is a WAV whose header the head does not hold
 * (its errors are then openAudioStream's).
 */
export async function openUploadStream(src: UploadSource, opts: DecodeOptions = {}): Promise<AudioStream> {
  if (decodesFromStore(src)) {
    const info = wavHeaderIn(src.head, src.size);
    if (info) {
      const max = opts.maxDurationSec ?? DEFAULT_MAX_DURATION_SEC;
      refuseTooLong(info.durationSec, max);
      return blockStream('wav', wavSource(windowed(src), info), info.durationSec, max);
    }
  }
  return openAudioStream(await wholeUpload(src), opts);
}

/** The WAV's header when the head holds it whole (the data chunk's header included), else null. */
function wavHeaderIn(head: Uint8Array, size: number): ReturnType<typeof parseWav> | null {
  try {
    return parseWav(head, size);
  } catch {
    return null;
  }
}

/** Decodes a whole upload of any supported format to 44.1 kHz stereo float32 (tests, tools, short clips). */
export async function decodeAudio(
  bytes: Uint8Array,
  opts: DecodeOptions = {},
): Promise<{ channels: [Float32Array, Float32Array]; sampleRate: 44100; durationSec: number; format: AudioFormat }> {
  const stream = await openAudioStream(bytes, opts);
  try {
    const channels = await readWhole(stream);
    const len = channels[0].length;
    if (len === 0) throw new AudioInputError('empty', `the ${AUDIO_FORMAT_NAMES[stream.format]} holds no audio (zero-length)`);
    return { channels, sampleRate: MODEL_SAMPLE_RATE, durationSec: len / MODEL_SAMPLE_RATE, format: stream.format };
  } finally {
    stream.close();
  }
}
