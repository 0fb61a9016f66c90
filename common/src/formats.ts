/**
 * Output formats of the stems, chosen per job: one place for their names, file extensions and
 * content types. `mp3` (LAME VBR quality 2, ≈190 kbps) is the default and the lab's; `mp3-320` is
 * CBR 320 kbps; `wav` and `flac` are 24-bit PCM, lossless against the float stems up to the
 * 24-bit quantisation.
 *
 * `mp3` and `mp3-320` share the extension, so a song holds one `.mp3` per stem: whichever ran last.
 */
export const OUTPUT_FORMATS = ['mp3', 'mp3-320', 'wav', 'flac'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export const DEFAULT_OUTPUT_FORMAT: OutputFormat = 'mp3';

export type Extension = 'mp3' | 'wav' | 'flac';

export const FORMAT_INFO: Record<OutputFormat, { ext: Extension; contentType: string; label: string }> = {
  mp3: { ext: 'mp3', contentType: 'audio/mpeg', label: 'MP3 (VBR ≈190 kbps)' },
  'mp3-320': { ext: 'mp3', contentType: 'audio/mpeg', label: 'MP3 (CBR 320 kbps)' },
  wav: { ext: 'wav', contentType: 'audio/wav', label: 'WAV (24-bit PCM)' },
  flac: { ext: 'flac', contentType: 'audio/flac', label: 'FLAC (24-bit)' },
};

export const EXTENSIONS: readonly Extension[] = ['mp3', 'wav', 'flac'];

export function isOutputFormat(value: string): value is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(value);
}

export function isExtension(value: string): value is Extension {
  return (EXTENSIONS as readonly string[]).includes(value);
}

export const extensionOf = (format: OutputFormat): Extension => FORMAT_INFO[format].ext;

export function contentTypeOf(ext: Extension): string {
  return ext === 'mp3' ? 'audio/mpeg' : ext === 'wav' ? 'audio/wav' : 'audio/flac';
}

/** Whether stems stored in `have` serve a request for `want`: VBR MP3 is served by either MP3, CBR 320 only by itself. */
export function formatCovers(have: OutputFormat, want: OutputFormat): boolean {
  return have === want || (want === 'mp3' && have === 'mp3-320');
}

/**
 * The formats a song stores after a run that adds `want` to `have`: one format per extension,
 * the requested one replacing the stored one of the same extension (mp3 → mp3-320).
 */
export function mergeFormats(have: readonly OutputFormat[], want: OutputFormat): OutputFormat[] {
  if (have.some((f) => formatCovers(f, want))) return [...have];
  return [...have.filter((f) => extensionOf(f) !== extensionOf(want)), want];
}
