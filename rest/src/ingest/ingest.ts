import { createHash } from 'node:crypto';
import { AudioInputError, sniffAudioFormat, unsupportedFormatError, type AudioFormat, type StreamingPut } from '@msaas/common';
import { apiError, badRequest, type ApiError } from '../errors.ts';
import { HEAD_BYTES, StreamProbe, headWindow } from './probe.ts';

/** What rest learnt of an upload while it went by. */
export interface Ingested {
  /** SHA-224 of every byte: the songhash. */
  hash: string;
  size: number;
  format: AudioFormat;
  /** From the header or the frames (0 when the format states none in a stream: the worker charges what it decodes). */
  audioSec: number;
  /** An upload that never filled a store part (≤ 5 MiB) was not written: its bytes, to store under the songhash if needed. */
  held: Buffer | null;
}

export interface IngestLimits {
  /** Bytes beyond which the upload is refused (413). */
  maxBytes: number;
  /** Seconds beyond which the song is refused (400 too_long), from the header before anything is stored when the header says. */
  maxDurationSec: number;
  /** What the bytes are called in a refusal ("the upload", "the file at the URL"). */
  what: string;
  /**
   * A refusal from the first bytes (not audio, too long) waits for the end of the source, counted
   * and dropped, so an upload over the size limit is still told so (413) as it always was. For a
   * multipart request, whose rest multer reads off before answering anyway.
   */
  readToEnd?: boolean;
}

/** An AudioInputError as the client's 400, with the parser's sentence. */
export function audioRefusal(err: AudioInputError): ApiError {
  return badRequest(err.code, err.message);
}

const tooLong = (sec: number, max: number): ApiError =>
  badRequest('too_long', `the song is ${Math.round(sec)} s long; the limit is ${max} s (MAX_DURATION_SEC)`);

export const overSize = (what: string, maxBytes: number, size?: number): ApiError =>
  apiError('payload_too_large', `${what} is ${size === undefined ? 'over' : `${(size / 2 ** 20).toFixed(1)} MiB,`} the limit of ${(maxBytes / 2 ** 20).toFixed(0)} MiB (MAX_UPLOAD_MB)`);

/**
 * Reads an upload as it arrives (a multipart file, a fetched URL, an object in the store) and, when
 * `sink` is given, writes it there as it goes: the songhash computed over every byte, the format
 * sniffed and the header's length checked from the first HEAD_BYTES before anything is written, the
 * rest of the length probe fed along (probe.ts). rest's memory for it: the head window, the
 * probe's few KiB and the sink's one part (5 MiB), whatever the size. A refusal aborts the sink
 * (nothing stays stored) and is thrown as the client's ApiError; the source is not consumed further.
 */
export async function ingest(source: AsyncIterable<Uint8Array>, limits: IngestLimits, sink: StreamingPut | null): Promise<Ingested> {
  const hasher = createHash('sha224');
  let size = 0;
  let head: Uint8Array[] | null = [];
  let probe: StreamProbe | null = null;
  let headTarget = HEAD_BYTES;
  const start = async (): Promise<void> => {
    const window = Buffer.concat(head!);
    head = null;
    probe = startProbe(window, limits);
    if (sink) await sink.write(window);
  };
  let refused: unknown = null;
  try {
    for await (const chunk of source) {
      size += chunk.length;
      if (size > limits.maxBytes) throw overSize(limits.what, limits.maxBytes);
      if (refused) continue;
      hasher.update(chunk);
      if (head) {
        head.push(chunk);
        if (headTarget === HEAD_BYTES && size >= 10) headTarget = headWindow(Buffer.concat(head));
        if (size >= headTarget) {
          try {
            await start();
          } catch (err) {
            if (!limits.readToEnd) throw err;
            refused = err;
          }
        }
        continue;
      }
      probe!.feed(chunk);
      if (sink) await sink.write(chunk);
    }
    if (refused) throw refused;
    if (size === 0) throw badRequest('empty', `${limits.what} is empty`);
    if (head) await start();
    const p = probe as StreamProbe | null;
    if (!p) throw new Error('probe not started');
    let audioSec: number;
    try {
      audioSec = p.seconds(size);
    } catch (err) {
      if (err instanceof AudioInputError) throw audioRefusal(err);
      throw err;
    }
    if (audioSec > limits.maxDurationSec) throw tooLong(audioSec, limits.maxDurationSec);
    const held = sink ? await sink.finishOrHold() : null;
    return { hash: hasher.digest('hex'), size, format: p.format, audioSec, held };
  } catch (err) {
    if (sink) await sink.abort();
    throw err;
  }
}

function startProbe(window: Uint8Array, limits: IngestLimits): StreamProbe {
  const sniffed = sniffAudioFormat(window);
  if (sniffed.format === null) throw badRequest('unsupported_format', unsupportedFormatError(sniffed.found).message);
  let probe: StreamProbe;
  try {
    probe = new StreamProbe(window, sniffed.format);
  } catch (err) {
    if (err instanceof AudioInputError) throw audioRefusal(err);
    throw err;
  }
  if (probe.headerSeconds !== null && probe.headerSeconds > limits.maxDurationSec) throw tooLong(probe.headerSeconds, limits.maxDurationSec);
  return probe;
}
