/** The four stems HTDemucs produces, in the model's output order. */
export const TRACKS = ['drums', 'bass', 'other', 'vocals'] as const;
export type Track = (typeof TRACKS)[number];

export function isTrack(value: string): value is Track {
  return (TRACKS as readonly string[]).includes(value);
}

/**
 * Every stem a job can store: the model's four and `instrumental` (drums + bass + other, summed
 * from the float stems before encoding). A job stores the four model stems unless it asks for a
 * set of its own (`stems`), which keeps the lab's four objects per song unchanged.
 */
export const STEMS = [...TRACKS, 'instrumental'] as const;
export type Stem = (typeof STEMS)[number];
/** What a job stores when it names no stems: the lab's four. */
export const DEFAULT_STEMS: readonly Stem[] = TRACKS;
/** The model stems that make up `instrumental`. */
export const INSTRUMENTAL_PARTS: readonly Track[] = ['drums', 'bass', 'other'];

export function isStem(value: string): value is Stem {
  return (STEMS as readonly string[]).includes(value);
}

/** Stems in STEMS order, without repeats. */
export function orderedStems(stems: Iterable<Stem>): Stem[] {
  const set = new Set(stems);
  return STEMS.filter((s) => set.has(s));
}
