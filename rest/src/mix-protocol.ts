import type { Extension, OutputFormat } from '@msaas/common';
import type { Mp3Quality } from '@msaas/common/audio-encode/index';

/** What the request thread asks of a mix thread (mix-render.ts); `id` tells the thread's mixes apart. */
export type ToMixThread =
  /** A mix of `gains.length` stored stems (their bytes follow on request), `total` samples long. */
  | { type: 'start'; id: number; ext: Extension; gains: number[]; format: OutputFormat; vbr: Mp3Quality; total: number }
  /** The next piece of stem `stem`'s stored bytes, asked for by `need`; null: its end. */
  | { type: 'bytes'; id: number; stem: number; chunk: Uint8Array | null }
  /** Reading stem `stem` from the store failed. */
  | { type: 'read-error'; id: number; stem: number; message: string }
  /** The client took the last output: make the next block. */
  | { type: 'go'; id: number }
  /** The client went away: drop the mix. */
  | { type: 'stop'; id: number };

/** What a mix thread answers. */
export type FromMixThread =
  /** Loaded (codecs compiled): ready for mixes. */
  | { type: 'ready' }
  | { type: 'need'; id: number; stem: number }
  /** Encoded bytes in order; `last` after the encoder's end. */
  | { type: 'out'; id: number; bytes: Uint8Array[]; last: boolean }
  | { type: 'failed'; id: number; message: string }
  /** The mix is over (whole, failed or stopped): its decoders and encoder are freed. */
  | { type: 'ended'; id: number };
