/** The four stems HTDemucs produces, in the model's output order. */
export const TRACKS = ['drums', 'bass', 'other', 'vocals'] as const;
export type Track = (typeof TRACKS)[number];

export function isTrack(value: string): value is Track {
  return (TRACKS as readonly string[]).includes(value);
}
