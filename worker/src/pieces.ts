import type { Logger } from 'pino';
import type { ObjectStore, ProgressOutcome, Queue } from '@msaas/common';
import type { SeparatedPiece } from './separation/index.ts';
import type { StoreAttempt } from './stem-upload.ts';

/** Pieces copied and waiting for the store, beyond which the chunk loop waits (each ≤ ~11 MB). */
export const MAX_QUEUED_PIECES = 2;

/** Frames of a piece's bytes: 4 stems × 2 channels × 4 bytes a frame. */
export const PIECE_BYTES_PER_FRAME = 32;

/**
 * A piece's bytes as the contract stores them (`live/<songhash>/<seq>.f32`): float32 little-endian,
 * planar, drums, bass, other, vocals; per stem the left channel's frames, then the right's.
 */
export function pieceBytes(stems: SeparatedPiece['stems']): Uint8Array {
  const n = stems[0]![0].length;
  const out = new Float32Array(8 * n);
  stems.forEach(([l, r], s) => {
    out.set(l, 2 * s * n);
    out.set(r, (2 * s + 1) * n);
  });
  return new Uint8Array(out.buffer);
}

/** The inverse of pieceBytes: [stem][channel] views into `bytes` (tests, the CLI). */
export function readPiece(bytes: Uint8Array): [Float32Array, Float32Array][] {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const all = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  const n = all.length / 8;
  return [0, 1, 2, 3].map((s) => [all.subarray(2 * s * n, (2 * s + 1) * n), all.subarray((2 * s + 1) * n, (2 * s + 2) * n)]);
}

export interface PiecePublisherDeps {
  store: ObjectStore;
  queue: Queue;
  logger: Logger;
  workerId: string;
  hash: string;
  attempt: StoreAttempt;
  /** The record lists pieces the store no longer has (a finished song run again): its list starts anew. */
  reset: boolean;
  /** The progress transition said the job is not this worker's any more. */
  onNotOwned: (outcome: Exclude<ProgressOutcome, 'owned'>) => void;
}

/**
 * Publishes a running job's pieces (issue 21): each chunk's final samples are copied, uploaded in
 * the background in order, and only then named in the job record by one progress transition per
 * chunk (progress-3.lua), which also carries the job's progress. The chunk loop waits only when
 * MAX_QUEUED_PIECES are already waiting for the store. A piece the store refuses for good stops the
 * publication (the job itself goes on: its stems are what counts); a progress call that fails is
 * made good by the next one (it carries the whole list).
 */
export class PiecePublisher {
  private readonly ends: number[] = [];
  private fraction = 0;
  private totalFrames: number | null = null;
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private waiters: (() => void)[] = [];
  private reset: boolean;
  private stopped = false;
  /** Set once publication stopped for a store failure: the caller falls back to plain progress. */
  failed = false;

  constructor(private readonly deps: PiecePublisherDeps) {
    this.reset = deps.reset;
  }

  get active(): boolean {
    return !this.stopped && !this.failed;
  }

  /** The job's progress as the next report carries it. */
  setFraction(fraction: number): void {
    this.fraction = fraction;
  }

  /** Takes a piece (copied at once); resolves when there is room for the next. */
  add(piece: SeparatedPiece): Promise<void> | void {
    if (!this.active) return;
    const bytes = pieceBytes(piece.stems);
    const end = piece.start + piece.frames;
    if (piece.songFrames !== null) this.totalFrames = piece.songFrames;
    if (piece.last) this.totalFrames = end;
    const { seq } = piece;
    this.queued++;
    this.chain = this.chain
      .then(async () => {
        if (!this.active) return;
        try {
          await this.deps.attempt(`piece ${seq}`, () => this.deps.store.putPiece(this.deps.hash, seq, bytes));
        } catch (err) {
          this.failed = true;
          this.deps.logger.warn({ job: this.deps.hash }, `progressive pieces stopped at piece ${seq}: ${(err as Error).message}`);
          return;
        }
        this.ends.push(end);
        await this.report();
      })
      .finally(() => {
        this.queued--;
        for (const w of this.waiters.splice(0)) w();
      });
    if (this.queued > MAX_QUEUED_PIECES) return this.room();
  }

  private async room(): Promise<void> {
    while (this.queued > MAX_QUEUED_PIECES) await new Promise<void>((r) => this.waiters.push(r));
  }

  private async report(): Promise<void> {
    const { queue, workerId, hash } = this.deps;
    const live = { readyFrames: this.ends.at(-1) ?? 0, totalFrames: this.totalFrames, pieceEnds: this.ends, reset: this.reset };
    const outcome = await queue.reportProgress(workerId, hash, this.fraction, live).catch((err: Error) => {
      this.deps.logger.warn({ job: hash }, `progress of piece ${this.ends.length - 1} not recorded (${err.message}); the next one carries it`);
      return null;
    });
    if (outcome === 'owned') this.reset = false;
    else if (outcome !== null) {
      this.stopped = true;
      this.deps.onNotOwned(outcome);
    }
  }

  /** Waits until every piece taken is stored and recorded (or publication stopped). */
  async flush(): Promise<void> {
    await this.chain;
  }

  /** Stops publishing (the job is being given up); pieces in flight finish, nothing new goes out. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * The separation failed: pieces already taken are final samples, so they still go out and are
   * recorded — for at most `ms` (a store that is down must not hold up the job's failure), then
   * whatever has not started is dropped.
   */
  async settle(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.chain, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
    this.stop();
  }
}
