import type { Logger } from 'pino';
import { AUDIO_FORMAT_NAMES, AudioInputError, sniffAudioFormat, type AudioFormat, type Config, type Queue } from '@msaas/common';
import { MODEL_SAMPLE_RATE } from './separation/decode.ts';
import { openAudioStream } from './separation/decode-audio.ts';

/**
 * The minutes quota charged from the decoded length (issue 22 item 5). rest charges a submission
 * the length its header states; an MP3's is its frame scan and a WAV's its data size (both what the
 * decoder yields), but a FLAC's STREAMINFO, an Ogg's last granule and an M4A's media header are
 * claims the decoder does not hold the file to: a header saying 0 s (or 1 s) of a 15-minute song
 * was charged 0 s. Before separating such a song the worker decodes it once, counting samples and
 * keeping none, charges the run's tenants the difference (charge-decoded-4.lua) and fails the job
 * before any inference when that takes every one of them past MAX_AUDIO_MINUTES_PER_DAY.
 */
const HEADER_LENGTH_IS_A_CLAIM: ReadonlySet<AudioFormat> = new Set(['flac', 'ogg-vorbis', 'ogg-opus', 'mp4-aac']);

/** Frames decoded per read into the scratch buffers (0.5 MiB of float32 for both channels). */
const SCRATCH_FRAMES = 1 << 16;

/**
 * Seconds the upload decodes to at 44.1 kHz, decoding and discarding; null for the formats whose
 * header length is already exact. Past `maxDurationSec` the decoder refuses it (too_long), as the
 * engine would, and a broken file is the decoder's AudioInputError, as it would be in the engine.
 */
export async function decodedSeconds(bytes: Uint8Array, maxDurationSec: number): Promise<number | null> {
  const sniffed = sniffAudioFormat(bytes);
  if (sniffed.format === null || !HEADER_LENGTH_IS_A_CLAIM.has(sniffed.format)) return null;
  const stream = await openAudioStream(bytes, { maxDurationSec });
  try {
    const scratch: [Float32Array, Float32Array] = [new Float32Array(SCRATCH_FRAMES), new Float32Array(SCRATCH_FRAMES)];
    let frames = 0;
    while (!stream.done) {
      const n = await stream.read(scratch, 0, SCRATCH_FRAMES);
      if (n === 0) break;
      frames += n;
    }
    return frames / MODEL_SAMPLE_RATE;
  } finally {
    stream.close();
  }
}

/**
 * Charges the job's tenants for the length the song decodes to beyond its header's; throws
 * AudioInputError('too_long') naming the quota when that takes every tenant charged past it.
 */
export async function chargeDecodedLength(deps: { config: Config; queue: Queue; logger: Logger; workerId: string }, hash: string, bytes: Uint8Array): Promise<void> {
  const { config, queue, logger, workerId } = deps;
  const decoded = await decodedSeconds(bytes, config.MAX_DURATION_SEC);
  if (decoded === null) return;
  const limit = config.MAX_AUDIO_MINUTES_PER_DAY;
  const result = await queue.chargeDecoded(workerId, hash, decoded, { maxAudioSecPerDay: limit ? limit * 60 : 0 });
  if (result.outcome !== 'charged' && result.outcome !== 'over') return;
  const format = AUDIO_FORMAT_NAMES[sniffAudioFormat(bytes).format ?? 'flac'];
  const tenants = Object.entries(result.usedSec).map(([t, used]) => `${t} (${(used / 60).toFixed(2)} minutes today)`).join(', ');
  const what = `the ${format} decodes to ${decoded.toFixed(1)} s, ${result.extraSec.toFixed(1)} s more than its header states`;
  logger.info({ job: hash }, `${what}: charged the difference to ${tenants}`);
  if (result.outcome === 'over') {
    throw new AudioInputError(
      'too_long',
      `${what}; charged for it, ${tenants} passed the limit of MAX_AUDIO_MINUTES_PER_DAY=${limit} (the count starts again at 00:00 UTC)`,
    );
  }
}
