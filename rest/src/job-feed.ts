import { isTerminal, type ClaimRecord, type JobView, type Queue, type WatchedJob } from '@msaas/common';
import type { JobEvents } from './job-events.ts';
import { viewOf } from './job-view.ts';

/** One open event stream as the feed sees it: whose view it gets, where frames go, how to end it. */
export interface Watcher {
  tenant: string;
  /**
   * A whole SSE frame (`event: job` with the tenant's JobView, or `event: gone`); `last` ends the
   * stream. `view` is the JobView the frame carries (null: gone), for streams that act on it.
   */
  send(frame: string, last: boolean, view: JobView | null): void;
  /** The process is shutting down. */
  close(): void;
}

interface Entry {
  watcher: Watcher;
  /** The frame this stream was sent last: an unchanged state is not sent again. */
  sent: string | null;
}

interface Song {
  entries: Set<Entry>;
  reading: boolean;
  /** A change arrived (or a stream joined) during a read: read once more when it ends. */
  again: boolean;
  retry: NodeJS.Timeout | null;
  unsubscribe: () => void;
}

function frameOf(hash: string, read: WatchedJob, claim: ClaimRecord | null): { frame: string; last: boolean; view: JobView | null } {
  if (!read.job || !claim) return { frame: `event: gone\ndata: ${JSON.stringify({ hash })}\n\n`, last: true, view: null };
  const job = read.job;
  const view = viewOf({ job, claim }, read.position);
  return { frame: `event: job\ndata: ${JSON.stringify(view)}\n\n`, last: isTerminal(job), view };
}

/**
 * The job states the event streams of this process send, read once per job event for every stream
 * that watches the song: one transaction with the job record, its queue position and the claim of
 * each distinct tenant watching (Queue.watchedJob), serialized once per tenant. So a job event costs
 * 5 + (tenants watching) Redis commands however many streams watch it, and events that arrive while
 * a read is in flight are answered together by one read after it (each read starts after the events
 * it answers, so no change is missed).
 */
export class JobFeed {
  private readonly songs = new Map<string, Song>();

  constructor(
    private readonly queue: Queue,
    private readonly events: JobEvents,
    private readonly retryMs = 1000,
  ) {}

  /** Streams open, over all songs (for tests and the doc's figures). */
  get watching(): number {
    let n = 0;
    for (const s of this.songs.values()) n += s.entries.size;
    return n;
  }

  /** The watcher gets the song's current state from the next read, then every change. Returns the unwatch. */
  watch(hash: string, watcher: Watcher): () => void {
    let song = this.songs.get(hash);
    if (!song) {
      const created: Song = { entries: new Set(), reading: false, again: false, retry: null, unsubscribe: () => undefined };
      created.unsubscribe = this.events.on(
        hash,
        () => this.refresh(hash, created),
        () => {
          for (const e of [...created.entries]) e.watcher.close();
        },
      );
      this.songs.set(hash, created);
      song = created;
    }
    const entry: Entry = { watcher, sent: null };
    song.entries.add(entry);
    this.refresh(hash, song);
    const owner = song;
    return () => {
      if (!owner.entries.delete(entry) || owner.entries.size > 0) return;
      owner.unsubscribe();
      if (owner.retry) clearTimeout(owner.retry);
      if (this.songs.get(hash) === owner) this.songs.delete(hash);
    };
  }

  private refresh(hash: string, song: Song): void {
    if (song.reading) {
      song.again = true;
      return;
    }
    song.reading = true;
    void this.readWhileChanged(hash, song);
  }

  private async readWhileChanged(hash: string, song: Song): Promise<void> {
    const alive = (): boolean => song.entries.size > 0 && this.songs.get(hash) === song;
    do {
      song.again = false;
      // Only streams that joined before the read started: their tenants are the ones it reads.
      const targets = [...song.entries];
      const tenants = [...new Set(targets.map((e) => e.watcher.tenant))];
      try {
        const read = await this.queue.watchedJob(hash, tenants);
        const frames = new Map(tenants.map((t, i) => [t, frameOf(hash, read, read.claims[i] ?? null)]));
        for (const e of targets) {
          const f = frames.get(e.watcher.tenant);
          if (!f || !song.entries.has(e) || f.frame === e.sent) continue;
          e.sent = f.frame;
          try {
            e.watcher.send(f.frame, f.last, f.view);
          } catch {
            e.watcher.close(); // one broken stream must not keep the frame from the others
          }
        }
      } catch {
        // Redis hiccup: keep the streams and read again shortly, so none waits for the next change.
        if (alive() && !song.again && !song.retry) {
          song.retry = setTimeout(() => {
            song.retry = null;
            if (alive()) this.refresh(hash, song);
          }, this.retryMs);
          song.retry.unref();
        }
      }
    } while (song.again && alive());
    song.reading = false;
  }
}
