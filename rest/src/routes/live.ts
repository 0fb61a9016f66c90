import { Router, type Response } from 'express';
import { DEFAULT_MP3, type Mp3Quality } from '@msaas/common/audio-encode/index';
import { STEMS, decodeSource, extensionOf, isStem, type ClaimedJob, type Extension, type JobRecord, type JobView, type ObjectStore, type Stem } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { apiError, badRequest, notFound } from '../errors.ts';
import { claimedOr404 } from '../job-view.ts';
import { tenantOf } from '../auth.ts';
import { clientKeyOf } from '../client-address.ts';
import { JobFeed } from '../job-feed.ts';
import { StreamSlots, tooManyStreams, type StreamSlot } from '../stream-limits.ts';
import { songhashParam } from '../params.ts';
import { drained } from '../backpressure.ts';
import { stemSamples } from '../mix-sources.ts';
import { decodeStem, type Stereo } from '../stem-decode.ts';
import { LIVE_SAMPLE_RATE, createLiveMp3Encoder, partsOf, readPieceBlock, type LiveMp3Encoder } from '../live-audio.ts';

/** Frames read from the pieces, encoded and sent at a time (1 s). */
const BLOCK = LIVE_SAMPLE_RATE;
/** A block whose read fails is read again this many times, this far apart, before the stream ends. */
const READ_RETRIES = 3;
const READ_RETRY_MS = 300;
/** After an aborted stream's last bytes, the socket is destroyed if the client has not taken them by then. */
const ABORT_GRACE_MS = 5000;

/** `:file` of the live route: `<stem>.mp3` (a model stem or `instrumental`). */
export function liveStemParam(value: unknown): Stem {
  const raw = typeof value === 'string' ? value : '';
  const name = raw.endsWith('.mp3') ? raw.slice(0, -4) : '';
  if (!isStem(name)) throw badRequest('bad_track', `the live stream is <stem>.mp3, stem one of ${STEMS.join(', ')}`);
  return name;
}

/** What the stream follows of the job: where the pieces end, the song's length, the state (gone: deleted, or the claim is). */
type Known = Pick<JobRecord, 'state' | 'pieceEnds' | 'totalFrames'> | 'gone';
const known = (job: Pick<JobRecord, 'state' | 'pieceEnds' | 'totalFrames'>): Known => ({ state: job.state, pieceEnds: job.pieceEnds, totalFrames: job.totalFrames });

/** The stems a claim may stream: those the job makes or made, less those the tenant removed. */
function refuseUnstreamable({ job, claim }: ClaimedJob, stem: Stem): void {
  const streamable = [...new Set([...job.wanted, ...job.stems])].filter((t) => !claim.hidden.includes(t));
  if (!streamable.includes(stem)) throw notFound(`${job.hash} has no ${stem} stem (it makes ${streamable.join(', ') || 'none'})`);
  if (job.state === 'failed') throw apiError('job_failed', `the separation of ${job.hash} failed${job.error ? `: ${job.error}` : ''}`);
}

const LIVE_HEADERS = {
  'Content-Type': 'audio/mpeg',
  'Cache-Control': 'no-store, no-transform',
  'X-Accel-Buffering': 'no',
  'Accept-Ranges': 'none',
};

/** A stored copy of the finished stem to decode: lossless when the song has it, else its MP3 (decodeSource). */
function finishedSource(job: Pick<JobRecord, 'formats'>): Extension | null {
  return decodeSource(job.formats);
}

/**
 * `GET /apiv1/jobs/:songhash/live/:stem.mp3`: one stem as a chunked MP3 while the job runs. It
 * starts with what is final (the pieces the job record lists), continues as each new piece is
 * announced (the job's events, read as the event stream reads them: job-feed.ts), and ends at the
 * song's end. One LAME per stream over the stem's samples in song order, so there is no seam at a
 * piece boundary. For a done job: the stored MP3 (with its Content-Length), or the stored lossless
 * stem encoded as it streams. The stream reads a block of a piece only once the client has taken
 * the last (drain), so a client that never reads holds a few socket buffers, not the song.
 *
 * It ends abruptly — the connection closes without the chunked body's end, which players and HTTP
 * clients report as an error — when the job fails, the song (or the tenant's claim) is deleted,
 * nothing moves for STREAM_MAX_LIFETIME_SEC, or the process shuts down. A worker that dies mid-song
 * does not end it: the retried run republishes the same pieces and the stream waits for new ones.
 */
export function liveRouter(deps: AppDeps): Router {
  const { queue, events, store, config, logger } = deps;
  const limits = { perClient: config.STREAMS_PER_CLIENT, perProcess: config.STREAMS_PER_PROCESS, lifetimeMs: config.STREAM_MAX_LIFETIME_SEC * 1000 };
  const slots = new StreamSlots(limits);
  const feed = new JobFeed(queue, events);
  const quality: Mp3Quality = config.MP3_VBR_QUALITY !== undefined ? { vbrQuality: config.MP3_VBR_QUALITY } : DEFAULT_MP3;
  const router = Router();

  router.get('/apiv1/jobs/:songhash/live/:file', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const stem = liveStemParam(req.params.file);
    const tenant = tenantOf(res).id;
    const noJob = `no job for ${hash}`;
    if (req.method === 'HEAD') {
      refuseUnstreamable(await claimedOr404(queue, hash, tenant, noJob), stem);
      res.set(LIVE_HEADERS);
      return void res.end();
    }

    const authenticated = res.locals.authenticated === true;
    const admission = slots.admit(authenticated ? `tenant:${tenant}` : `address:${clientKeyOf(req, res)}`);
    if (!admission.ok) throw tooManyStreams(admission, limits, authenticated, 'live audio streams');
    const { slot } = admission;
    res.once('close', slot.release);
    let claimed: ClaimedJob;
    try {
      claimed = await claimedOr404(queue, hash, tenant, noJob);
      refuseUnstreamable(claimed, stem);
      if (claimed.job.state === 'done' && (await serveStoredMp3(store, res, claimed.job, stem))) return;
    } catch (err) {
      slot.release();
      throw err;
    }
    if (res.destroyed) return void slot.release(); // the client left while we looked
    res.writeHead(200, LIVE_HEADERS);
    res.flushHeaders();
    const stream = new LiveStream({ store, feed, res, slot, hash, tenant, stem, encoder: (total) => createLiveMp3Encoder(quality, total), start: known(claimed.job), formats: claimed.job });
    await stream.run().catch((err: unknown) => {
      logger.warn({ job: hash, err }, `live ${stem} stream failed`);
      stream.abort();
    });
  });

  return router;
}

/** A done job's stored MP3, piped with its length; false when there is none (the stream encodes one). */
async function serveStoredMp3(store: ObjectStore, res: Response, job: JobRecord, stem: Stem): Promise<boolean> {
  if (!job.formats.some((f) => extensionOf(f) === 'mp3')) return false;
  const info = await store.statStem(job.hash, stem, 'mp3');
  if (!info) return false;
  res.set({ ...LIVE_HEADERS, 'Cache-Control': 'private, max-age=3600', 'Content-Length': String(info.size), ETag: `"${info.etag}"` });
  const body = await store.getStem(job.hash, stem, undefined, 'mp3');
  body.on('error', () => res.destroy());
  res.on('close', () => body.destroy());
  body.pipe(res);
  return true;
}

interface LiveStreamInit {
  store: ObjectStore;
  feed: JobFeed;
  res: Response;
  slot: StreamSlot;
  hash: string;
  tenant: string;
  stem: Stem;
  /** The stream's encoder, made when the first samples are in hand (with the song's length if known by then). */
  encoder: (totalFrames: number | null) => Promise<LiveMp3Encoder>;
  start: Known;
  formats: Pick<JobRecord, 'formats' | 'hash'>;
}

/** One live stream's state: where it is in the song, what it knows of the job, and how it ends. */
class LiveStream {
  private pos = 0;
  private known: Known;
  private enc: LiveMp3Encoder | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private readonly unwatch: () => void;
  private watching = true;
  /** Ends a stream that has not moved (no piece, no drain, no job event) for its lifetime. */
  private readonly stall: NodeJS.Timeout;

  constructor(private readonly s: LiveStreamInit) {
    this.known = s.start;
    s.res.once('close', () => this.close());
    this.stall = setTimeout(() => this.abort(), s.slot.lifetimeMs);
    this.stall.unref();
    this.unwatch = s.feed.watch(s.hash, {
      tenant: s.tenant,
      send: (_frame, last, view: JobView | null) => {
        this.known = view ? known(view) : 'gone';
        if (last) this.stopWatching();
        this.stall.refresh();
        this.notify();
      },
      close: () => this.abort(),
    });
  }

  async run(): Promise<void> {
    const parts = partsOf(this.s.stem);
    let failures = 0;
    while (!this.closed) {
      const k = this.known;
      if (k === 'gone' || k.state === 'failed') return this.abort();
      const ends = k.pieceEnds;
      const available = ends.at(-1) ?? 0;
      const total = k.totalFrames ?? Number.POSITIVE_INFINITY;
      if (this.pos >= total) return this.finish();
      if (this.pos < available) {
        const seq = ends.findIndex((e) => e > this.pos);
        const first = seq === 0 ? 0 : ends[seq - 1]!;
        const to = Math.min(ends[seq]!, this.pos + BLOCK, total);
        let block: Stereo;
        try {
          block = await readPieceBlock(this.s.store, this.s.hash, seq, ends[seq]! - first, parts, this.pos - first, to - first);
          failures = 0;
        } catch (err) {
          if (this.closed) return;
          // Pieces removed after the job ended: the finished stem takes over where the stream is.
          if (this.known !== 'gone' && this.known.state === 'done') return this.fromFinishedStem();
          // A store hiccup, or a piece being rewritten by a retried run (a store without atomic PUTs may answer a short read meanwhile): read again shortly.
          if (++failures > READ_RETRIES) throw err;
          await new Promise((r) => setTimeout(r, READ_RETRY_MS));
          continue;
        }
        if (!(await this.send((await this.encoder()).encode(block)))) return;
        this.pos = to;
        continue;
      }
      // Done with the pieces short of the song (their publication stopped, or they are removed): the stored stem has the rest.
      if (k.state === 'done') return available >= total ? this.finish() : this.fromFinishedStem();
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  /** The rest of the song from the stored finished stem (decoded, the frames already sent skipped). */
  private async fromFinishedStem(): Promise<void> {
    const ext = finishedSource(this.s.formats);
    const info = ext ? await this.s.store.statStem(this.s.hash, this.s.stem, ext) : null;
    if (!ext || !info) return this.abort();
    // A stream that starts here can announce the song's length (gapless): the stored stem's header has it.
    if (!this.enc) {
      const known = this.known === 'gone' ? null : this.known.totalFrames;
      this.enc = await this.s.encoder(known ?? (await stemSamples(this.s.store, this.s.hash, this.s.stem, ext)));
    }
    const decoded = decodeStem(await this.s.store.getStem(this.s.hash, this.s.stem, undefined, ext), ext);
    let skip = this.pos;
    try {
      for await (const [l, r] of decoded) {
        if (this.closed) return;
        const from = Math.min(skip, l.length);
        skip -= from;
        if (from === l.length) continue;
        if (!(await this.send((await this.encoder()).encode([l.subarray(from), r.subarray(from)])))) return;
        this.pos += l.length - from;
      }
    } finally {
      await decoded.return(undefined);
    }
    this.finish();
  }

  /** The encoder, made on first use: tagged when the song's length is known by then. */
  private async encoder(): Promise<LiveMp3Encoder> {
    if (!this.enc) this.enc = await this.s.encoder(this.known === 'gone' ? null : this.known.totalFrames);
    return this.enc;
  }

  /** Writes and waits for the client to take them when the socket's buffer is full; false once the stream is over. */
  private async send(bytes: Uint8Array): Promise<boolean> {
    if (this.closed) return false;
    if (bytes.length > 0 && !this.s.res.write(bytes) && !(await drained(this.s.res))) return false;
    this.stall.refresh();
    return !this.closed;
  }

  /** The song's end: the encoder's last frames, then the chunked body's end. */
  private finish(): void {
    if (this.closed) return;
    const tail = this.enc?.finish() ?? new Uint8Array(0);
    this.close();
    this.s.res.end(tail);
  }

  /**
   * The stream cannot go on (failed job, deleted song, stall, shutdown): what is encoded is sent,
   * then the connection closes without the chunked body's end, so the client sees an error rather
   * than a song that ended early.
   */
  abort(): void {
    if (this.closed) return;
    this.close();
    const { res } = this.s;
    const socket = res.socket;
    if (!socket || res.destroyed) return void res.destroy();
    const kill = setTimeout(() => socket.destroy(), ABORT_GRACE_MS);
    kill.unref();
    socket.once('close', () => clearTimeout(kill));
    socket.end();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.stall);
    this.stopWatching();
    this.s.slot.release();
    this.notify();
  }

  private stopWatching(): void {
    if (!this.watching) return;
    this.watching = false;
    this.unwatch();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
