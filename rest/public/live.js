// @ts-check
// The pieces of a song still being separated (the job view's `live`): each piece is the final
// samples one chunk of the separation produced, for the four model stems, as raw little-endian
// float32, planar — per stem the left channel's n frames, then the right's (n = bytes / 32).
// `PieceLoader` fetches them in order as the job's `pieceEnds` grows and hands each one over
// parsed; `instrumental` is never in a piece: it is drums + bass + other, summed here the way the
// engine sums it.
import { fetchBinary, isGone } from './api.js';

/** @typedef {import('./api.js').JobView} JobView */
/** @typedef {import('../../common/src/job.ts').LiveView} LiveView */
/** @typedef {import('../../common/src/tracks.ts').Stem} Stem */

/** The pieces' sample rate. */
export const LIVE_RATE = 44100;
/** The model stems in a piece, in its order. @type {readonly Stem[]} */
const PIECE_STEMS = ['drums', 'bass', 'other', 'vocals'];
/** The stems `instrumental` sums, in the engine's order. @type {readonly Stem[]} */
const INSTRUMENTAL_PARTS = ['drums', 'bass', 'other'];
/** Bytes per frame of a piece: 4 stems × 2 channels × 4 bytes. */
const FRAME_BYTES = PIECE_STEMS.length * 2 * 4;
/** Network failures in a row before the loader gives up (a 404 ends it at once). */
const MAX_RETRIES = 5;

/**
 * @typedef {object} Piece
 * @property {number} seq 0-based piece index
 * @property {number} start first frame it covers
 * @property {number} end frame after its last
 * @property {Map<Stem, [Float32Array, Float32Array]>} stems left and right channel per wanted stem
 */

/**
 * The stems of one piece's bytes.
 * @param {ArrayBuffer} bytes
 * @param {readonly Stem[]} wanted model stems and/or `instrumental`
 * @returns {{ frames: number, stems: Map<Stem, [Float32Array, Float32Array]> }}
 */
export function parsePiece(bytes, wanted) {
  if (bytes.byteLength % FRAME_BYTES !== 0) throw new Error(`a piece of ${bytes.byteLength} bytes is not whole frames of ${FRAME_BYTES} bytes`);
  const n = bytes.byteLength / FRAME_BYTES;
  const all = new Float32Array(bytes);
  /** @param {Stem} stem @returns {[Float32Array, Float32Array]} */
  const channels = (stem) => {
    const i = PIECE_STEMS.indexOf(stem);
    return [all.subarray(2 * i * n, (2 * i + 1) * n), all.subarray((2 * i + 1) * n, (2 * i + 2) * n)];
  };
  /** @type {Map<Stem, [Float32Array, Float32Array]>} */
  const stems = new Map();
  for (const stem of wanted) {
    if (stem !== 'instrumental') {
      stems.set(stem, channels(stem));
      continue;
    }
    /** @type {[Float32Array, Float32Array]} */
    const sum = [new Float32Array(n), new Float32Array(n)];
    for (const part of INSTRUMENTAL_PARTS) {
      const src = channels(part);
      for (let c = 0; c < 2; c++) for (let f = 0; f < n; f++) sum[c][f] += src[c][f];
    }
    stems.set(stem, sum);
  }
  return { frames: n, stems };
}

/** Fetches a running song's pieces in order, each once, as they are listed. */
export class PieceLoader {
  /**
   * @param {string} pieceUrl the job view's `live.pieceUrl` (the seq number is appended)
   * @param {readonly Stem[]} wanted
   * @param {{ onPiece: (piece: Piece) => void, onError: (err: unknown) => void }} handlers
   */
  constructor(pieceUrl, wanted, handlers) {
    this.pieceUrl = pieceUrl;
    this.wanted = wanted;
    this.handlers = handlers;
    /** @type {number[]} cumulative end frames, as the job lists them */
    this.ends = [];
    /** The next piece to fetch. */
    this.next = 0;
    this.busy = false;
    this.stopped = false;
    this.failures = 0;
    this.timer = 0;
  }

  /** More pieces are listed (the job's `pieceEnds`; never shorter than before). @param {readonly number[]} ends */
  update(ends) {
    if (ends.length > this.ends.length) this.ends = [...ends];
    void this.pump();
  }

  /** Stops fetching; a piece on its way is dropped. */
  stop() {
    this.stopped = true;
    window.clearTimeout(this.timer);
  }

  async pump() {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      while (!this.stopped && this.next < this.ends.length) {
        const seq = this.next;
        const start = seq > 0 ? this.ends[seq - 1] : 0;
        const end = this.ends[seq];
        let bytes;
        try {
          bytes = await fetchBinary(`${this.pieceUrl}${seq}`);
        } catch (err) {
          if (this.stopped) return;
          this.failures++;
          if (isGone(err) || this.failures > MAX_RETRIES) {
            this.stop();
            this.handlers.onError(err);
            return;
          }
          this.timer = window.setTimeout(() => void this.pump(), 500 * 2 ** this.failures);
          return;
        }
        if (this.stopped) return;
        this.failures = 0;
        const { frames, stems } = parsePiece(bytes, this.wanted);
        if (frames !== end - start) throw new Error(`piece ${seq} has ${frames} frames; the job lists ${end - start}`);
        this.next = seq + 1;
        this.handlers.onPiece({ seq, start, end, stems });
      }
    } catch (err) {
      this.stop();
      this.handlers.onError(err);
    } finally {
      this.busy = false;
    }
  }
}
