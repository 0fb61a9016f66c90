import { z } from 'zod';
import { DEFAULT_STEMS, isStem, type Stem, type TRACKS } from './tracks.ts';
import { DEFAULT_OUTPUT_FORMAT, FORMAT_INFO, isOutputFormat, type OutputFormat } from './formats.ts';

export const JOB_STATES = ['queued', 'processing', 'done', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** What a callback may carry back to its caller: stored in the job record and POSTed by the worker. */
export const MAX_CALLBACK_DATA_BYTES = 4 * 1024;

export const CallbackSchema = z
  .object({
    url: z.string().max(2048),
    data: z.unknown().optional(),
  })
  .superRefine((cb, ctx) => {
    if (cb.data === undefined) return;
    let text: string | undefined;
    try {
      text = JSON.stringify(cb.data);
    } catch {
      // e.g. nesting deep enough to overflow the serializer's stack: it would fail later, at enqueue
      ctx.addIssue({ code: 'custom', path: ['data'], message: 'cannot be serialized as JSON (nested too deeply)' });
      return;
    }
    if (text !== undefined && new TextEncoder().encode(text).byteLength > MAX_CALLBACK_DATA_BYTES) {
      ctx.addIssue({ code: 'custom', path: ['data'], message: `must be at most ${MAX_CALLBACK_DATA_BYTES / 1024} KiB of JSON` });
    }
  });
export type Callback = z.infer<typeof CallbackSchema>;
/** A claim's callback with the id of the delivery it owes (`X-MSaaS-Event-Id`; absent until a run finishes for the claim). */
export type ClaimCallback = Callback & { eventId?: string };

/**
 * The job record as stored in the Redis hash `job:<songhash>` (all values are strings there): the
 * work on one song's bytes, shared by every tenant that submitted them.
 */
export interface JobRecord {
  hash: string;
  state: JobState;
  progress: number;
  attempts: number;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  worker: string | null;
  durationSec: number | null;
  sizeBytes: number | null;
  /** The audio's length from the frame scan at submit. */
  audioSec: number | null;
  /** Stems uploaded and seen by at least one claim (each in every format of `formats`). */
  stems: Stem[];
  /** The formats the run makes and, once done, the song's stems are stored in (records without the field: mp3). */
  formats: OutputFormat[];
  /**
   * The formats whose files are complete in the store for `stems`: all of `formats` once done; while
   * another run makes more formats, those it does not rewrite (served throughout). Records without
   * the field: `formats` once done, else none.
   */
  storedFormats: OutputFormat[];
  /** The stems the run makes (records without the field: the four model stems). */
  wanted: Stem[];
  /** The tenant whose submission queued this run: whose fair turn it takes. Never shown to others. */
  tenant: string | null;
  /** Frames (44.1 kHz) from the song's start final for every stem: the progressive pieces cover them (never lowered). */
  readyFrames: number;
  /** The song's length in frames, once the worker knows it. */
  totalFrames: number | null;
  /** Cumulative end frame of each published piece: piece i covers [pieceEnds[i-1] or 0, pieceEnds[i]). */
  pieceEnds: number[];
  /** A song split over workers (issue 23): its ranges in song order; absent for a song run whole. */
  ranges?: JobRange[];
  /** How it was split (lib/ranges.lua): never shown; null for a song run whole. */
  split: SplitRecord | null;
}

export const RANGE_STATES = ['queued', 'processing', 'done'] as const;
export type RangeState = (typeof RANGE_STATES)[number];

/** One range of consecutive chunks of a split song, as the job view shows it. */
export interface JobRange {
  fromSec: number;
  /** The range's end; the last range's is the song's length (its estimate until the song is done). */
  toSec: number;
  state: RangeState;
  /** The worker running it, or the one that did it; null while it waits. */
  worker: string | null;
  attempts: number;
}

/** A split song's geometry (job fields rangeChunks, rangeStride, splitId, rangeFrames). */
export interface SplitRecord {
  /** Range i is chunks [chunks[i], chunks[i+1]); the last range runs to the song's end. */
  chunks: number[];
  /** Chunk stride in frames. */
  stride: number;
  /** The split's token (queue items of this split end in it). */
  id: string;
  /** The song's length in frames as estimated at the split. */
  estimatedFrames: number;
  /** Once every range is done: the stems' encoding units (one per stem, queue items numbered after the ranges), and how many are done. */
  encodeUnits: number;
  encodesDone: number;
}

/** A range's queue item, `<songhash>#<index>#<splitId>` (lib/ranges.lua); a song's item is its songhash. */
export interface RangeItem {
  item: string;
  hash: string;
  index: number;
  splitId: string;
}

export function rangeItem(hash: string, index: number, splitId: string): RangeItem {
  return { item: `${hash}#${index}#${splitId}`, hash, index, splitId };
}

/** The range an item names, or null for a song's item. */
export function parseRangeItem(item: string): RangeItem | null {
  const m = /^([^#]+)#(\d+)#(.+)$/.exec(item);
  return m ? { item, hash: m[1]!, index: Number(m[2]), splitId: m[3]! } : null;
}

const LIVE_RATE_HZ = 44_100;

function parseSplit(fields: Record<string, string>): SplitRecord | null {
  if (!fields.rangeChunks || !fields.splitId) return null;
  const chunks = fields.rangeChunks.split(',').map(Number);
  const stride = Number(fields.rangeStride);
  if (chunks.some((c) => !Number.isInteger(c) || c < 0) || !(stride > 0)) return null;
  return {
    chunks,
    stride,
    id: fields.splitId,
    estimatedFrames: Number(fields.rangeFrames) || 0,
    encodeUnits: Number(fields.encodeUnits) || 0,
    encodesDone: Number(fields.encodesDone) || 0,
  };
}

function parseRanges(split: SplitRecord, fields: Record<string, string>): JobRange[] {
  const songFrames = num(fields.totalFrames) ?? split.estimatedFrames;
  return split.chunks.map((a, i) => {
    const [state = 'queued', worker = '', attempts = '0'] = (fields[`r${i}`] ?? '').split('|');
    const next = split.chunks[i + 1];
    return {
      fromSec: Math.round((a * split.stride * 1000) / LIVE_RATE_HZ) / 1000,
      toSec: Math.round(((next !== undefined ? next * split.stride : songFrames) * 1000) / LIVE_RATE_HZ) / 1000,
      state: (RANGE_STATES as readonly string[]).includes(state) ? (state as RangeState) : 'queued',
      worker: worker === '' ? null : worker,
      attempts: Number(attempts) || 0,
    };
  });
}

/** One tenant's claim on a song (`claim:<songhash>:<tenant>`): what is that tenant's alone. */
export interface ClaimRecord {
  tenant: string;
  createdAt: string;
  filename: string | null;
  callback: ClaimCallback | null;
  callbackStatus: string | null;
  /** Stems this tenant removed (others may still have them). */
  hidden: Stem[];
  /** What this tenant asked for, the union of its submissions (null: a claim from before they were kept). */
  askFormats: OutputFormat[] | null;
  askStems: Stem[] | null;
  /** Waiting for a run to make what it asked (true), or made (false); null: a claim from before. */
  pending: boolean | null;
  /** When what it asked was made: the finish of the run it waited for, or its submission when the song had it. */
  doneAt: string | null;
  /** The delivery its callback owes for that finish (stable: every attempt and any repeat carry it). */
  eventId: string | null;
  /** The run that made what it asked, as the claim keeps it (null: none ran for it, e.g. it joined a done song). */
  run: ClaimRun | null;
}

/** A finished run as one claim keeps it; `worker` only for the tenant whose submission queued it. */
export interface ClaimRun {
  startedAt: string | null;
  attempts: number;
  durationSec: number | null;
  worker: string | null;
}

/** The job as the API shows it to the tenant holding the claim. */
export interface JobView extends Omit<JobRecord, 'stems' | 'tenant' | 'wanted' | 'storedFormats' | 'split'> {
  position: number | null;
  filename: string | null;
  callbackStatus: string | null;
  /** URL of each stem in the song's first format (`formats[0]`; the lab's: `.mp3`). */
  stems: Partial<Record<Stem, string>>;
  /** URL of each stem in each stored format. */
  files: Partial<Record<OutputFormat, Partial<Record<Stem, string>>>>;
  callback: { url: string; status: string | null } | null;
  /** Seconds from the song's start final for every stem (readyFrames / 44,100; equals durationSec once done). */
  readySec: number;
  /** The progressive pieces while the job runs and at least one exists, else null. */
  live: LiveView | null;
}

/** Where a running job's final audio is: its raw pieces and a live MP3 per stem. */
export interface LiveView {
  sampleRate: 44100;
  /** The model stems a piece holds, in its layout's order (TRACKS). */
  stems: [...typeof TRACKS];
  pieceEnds: number[];
  /** Append the piece's seq number. */
  pieceUrl: string;
  streams: Partial<Record<Stem, string>>;
}

function num(v: string | undefined): number | null {
  if (v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function str(v: string | undefined): string | null {
  return v === undefined || v === '' ? null : v;
}

const stemList = (v: string | undefined): Stem[] => [...new Set((v ?? '').split(',').filter(isStem))];
const formatList = (v: string | undefined): OutputFormat[] => {
  const formats = [...new Set((v ?? '').split(',').filter(isOutputFormat))];
  return formats.length > 0 ? formats : [DEFAULT_OUTPUT_FORMAT];
};

function parseCallback(text: string | undefined): Callback | null {
  if (!text) return null;
  try {
    const parsed = CallbackSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function withEventId(callback: Callback | null, eventId: string | null): ClaimCallback | null {
  return callback && eventId ? { ...callback, eventId } : callback;
}

export function parseJobRecord(hash: string, fields: Record<string, string>): JobRecord | null {
  if (!fields.state) return null;
  const state = (JOB_STATES as readonly string[]).includes(fields.state) ? (fields.state as JobState) : 'queued';
  return {
    hash,
    state,
    progress: num(fields.progress) ?? 0,
    attempts: num(fields.attempts) ?? 0,
    error: str(fields.error),
    createdAt: fields.createdAt ?? '',
    updatedAt: fields.updatedAt ?? fields.createdAt ?? '',
    startedAt: str(fields.startedAt),
    finishedAt: str(fields.finishedAt),
    worker: str(fields.worker),
    durationSec: num(fields.durationSec),
    sizeBytes: num(fields.sizeBytes),
    audioSec: num(fields.audioSec),
    stems: stemList(fields.stems),
    formats: formatList(fields.formats),
    storedFormats: fields.storedFormats !== undefined ? [...new Set(fields.storedFormats.split(',').filter(isOutputFormat))] : state === 'done' ? formatList(fields.formats) : [],
    wanted: fields.wanted ? stemList(fields.wanted) : [...DEFAULT_STEMS],
    tenant: str(fields.tenant),
    readyFrames: num(fields.readyFrames) ?? 0,
    totalFrames: num(fields.totalFrames),
    pieceEnds: (fields.pieceEnds ?? '').split(',').filter((v) => v !== '').map(Number).filter((n) => Number.isInteger(n) && n > 0),
    ...splitFields(fields),
  };
}

function splitFields(fields: Record<string, string>): Pick<JobRecord, 'split' | 'ranges'> {
  const split = parseSplit(fields);
  return split ? { split, ranges: parseRanges(split, fields) } : { split: null };
}

export function parseClaimRecord(fields: Record<string, string>): ClaimRecord | null {
  if (!fields.tenant) return null;
  return {
    tenant: fields.tenant,
    createdAt: fields.createdAt ?? '',
    filename: str(fields.filename),
    callback: withEventId(parseCallback(fields.callback), str(fields.eventId)),
    callbackStatus: str(fields.callbackStatus),
    hidden: stemList(fields.hidden),
    askFormats: fields.askFormats !== undefined ? [...new Set(fields.askFormats.split(',').filter(isOutputFormat))] : null,
    askStems: fields.askStems !== undefined ? stemList(fields.askStems) : null,
    pending: fields.pending === '1' ? true : fields.pending === '0' ? false : null,
    doneAt: str(fields.doneAt),
    eventId: str(fields.eventId),
    run: fields.runAttempts !== undefined ? { startedAt: str(fields.runStartedAt), attempts: num(fields.runAttempts) ?? 0, durationSec: num(fields.runSec), worker: str(fields.runWorker) } : null,
  };
}

/** Where a stem is served: `/apiv1/track/<songhash>/<stem>.<ext>` (the lab's: `.mp3`). */
export function stemUrl(hash: string, stem: Stem, format: OutputFormat = DEFAULT_OUTPUT_FORMAT): string {
  return `/apiv1/track/${hash}/${stem}.${FORMAT_INFO[format].ext}`;
}
