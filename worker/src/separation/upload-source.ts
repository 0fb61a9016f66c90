/**
 * The stored upload as the worker reads it (issue 22 item 7): its size, its first bytes (format and
 * header), and spans read on demand. A WAV is decoded from the store as it goes through a window of
 * UPLOAD_WINDOW_BYTES (decode-audio.ts openUploadStream), so the worker holds 4 MiB of it, not the
 * file: a WAV is the largest upload for its length (up to MAX_UPLOAD_MB). Other formats' decoders
 * take the whole file.
 */
import { sniffAudioFormat } from '@msaas/common';

export interface UploadSource {
  readonly size: number;
  /** The file's first min(size, UPLOAD_HEAD_BYTES) bytes. */
  readonly head: Uint8Array;
  /** Bytes [start, end) of the file. */
  read(start: number, end: number): Promise<Uint8Array>;
}

/** How much of an upload is read first: a WAV's header and its data chunk's header are within it. */
export const UPLOAD_HEAD_BYTES = 1 << 20;
/** How much is fetched per store request when a WAV is read as it decodes. */
export const UPLOAD_WINDOW_BYTES = 4 << 20;

/** Whether the upload is read from the store as it decodes: a WAV larger than its head. */
export function decodesFromStore(src: UploadSource): boolean {
  return src.head.length < src.size && sniffAudioFormat(src.head).format === 'wav';
}

/** The whole upload: its head when that is all of it, else one read of the file. */
export async function wholeUpload(src: UploadSource): Promise<Uint8Array> {
  return src.head.length === src.size ? src.head : src.read(0, src.size);
}

/** Reads spans of `src` through a window fetched ahead: reading in order costs one store request per window. */
export function windowed(src: UploadSource, windowBytes = UPLOAD_WINDOW_BYTES): { read(start: number, end: number): Promise<Uint8Array> } {
  let base = 0;
  let win: Uint8Array = src.head;
  return {
    async read(start, end) {
      if (start < base || end > base + win.length) {
        const to = Math.min(src.size, Math.max(end, start + windowBytes));
        win = await src.read(start, to);
        base = start;
        if (win.length !== to - start) throw new Error(`the stored upload gave ${win.length} bytes for ${to - start} (bytes ${start}–${to} of ${src.size})`);
      }
      return win.subarray(start - base, end - base);
    },
  };
}
