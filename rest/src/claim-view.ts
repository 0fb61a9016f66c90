import { formatCovers, type ClaimedJob, type JobState, type OutputFormat, type Stem } from '@msaas/common';

/**
 * What one claim sees of its song: the shared work seen through that tenant's own request
 * (docs/security.md, "A joiner's own view"). A song is shared by every tenant that sent its bytes,
 * but what a tenant asked, when, and what was run for others is not the others' business:
 *
 * - A claim that waits for a run (`pending`, or a claim from before the field) sees that run: its
 *   state, progress, place in the queue, attempts and error (why its song fails is its business).
 * - A claim whose request was made sees its song as done, with the time it was made for it, even
 *   while another tenant's run makes more formats (and whatever that run's fate).
 * - Run details (start, finish, processing time, attempts, error) are shown only for the run this
 *   claim waited for (kept with the claim once done: complete-6.lua), the start no earlier than its
 *   own submission; the worker's id only to the tenant whose submission queued that run.
 * - Formats are those this tenant asked for (the union of its submissions) that the store holds
 *   finished, never the ones only other tenants asked for; stems are the song's finished ones less
 *   those it removed, whoever asked for them (a mix sums what the song has: mix-sources.ts mixStems).
 */
export interface ClaimOutlook {
  state: JobState;
  progress: number;
  /** The claim waits for the record's current run. */
  waiting: boolean;
  /** The run made for this claim: the record's while it waits, else the one it kept (none when it joined a done song). */
  run: RunDetails;
  /** Stems it may download (finished, not removed by it). */
  visible: Stem[];
  /** Formats whose files it may download now (finished; asked for or covering what it asked). */
  formats: OutputFormat[];
  /** Formats it asked for that a run is making now (not served until that run is done). */
  coming: OutputFormat[];
}

export interface RunDetails {
  startedAt: string | null;
  finishedAt: string | null;
  attempts: number;
  error: string | null;
  /** Processing time of the run. */
  durationSec: number | null;
  worker: string | null;
}

const isActive = (state: JobState): boolean => state === 'queued' || state === 'processing';

export function claimOutlook({ job, claim }: ClaimedJob): ClaimOutlook {
  const waiting = claim.pending ?? true;
  const active = isActive(job.state);
  const asked = claim.askFormats;
  const formats = job.storedFormats.filter((f) => asked === null || asked.some((a) => formatCovers(f, a)));
  const coming = waiting && active ? (asked ?? job.formats).filter((a) => !formats.some((f) => formatCovers(f, a))) : [];
  const visible = job.stems.filter((t) => !claim.hidden.includes(t));
  // a joiner's run started, for it, when it joined
  const since = (t: string | null): string | null => (t === null ? null : laterOf(t, claim.createdAt || null));
  const run: RunDetails = waiting
    ? {
        startedAt: since(job.startedAt),
        finishedAt: job.finishedAt,
        attempts: job.attempts,
        error: job.error,
        durationSec: job.durationSec,
        worker: job.tenant === claim.tenant ? job.worker : null,
      }
    : {
        startedAt: since(claim.run?.startedAt ?? null),
        finishedAt: claim.doneAt,
        attempts: claim.run?.attempts ?? 0,
        error: null,
        durationSec: claim.run?.durationSec ?? null,
        worker: claim.run?.worker ?? null,
      };
  return {
    state: waiting ? job.state : 'done',
    progress: waiting ? job.progress : 1,
    waiting,
    run,
    visible: formats.length > 0 ? visible : [],
    formats,
    coming,
  };
}

/** The later of two ISO times (either may be null). */
export function laterOf(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return a ?? b;
  return Date.parse(a) >= Date.parse(b) ? a : b;
}
