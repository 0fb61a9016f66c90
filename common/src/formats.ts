/**
 * Output formats of the stems, chosen per job: the one definition of each format — name, file
 * extension, content type, labels, encoder and which requests it serves. Everything else derives
 * from FORMAT_INFO: the API's checks and `/apiv1/info` (the page's lists), the store's keys and
 * content types, the encoders (audio-encode/index.ts: one per `encoder.codec`), the queue scripts'
 * cover rule (queue/lua-prelude.ts generates their table) and the CLI's usage text. Adding a format
 * is one entry here (plus its encoder if its codec is new).
 *
 * `mp3` (LAME VBR, quality MP3_VBR_QUALITY, default 2 ≈190 kbps) is the default and the lab's;
 * `mp3-320` is CBR 320 kbps; `wav` and `flac` are 24-bit PCM, lossless against the float stems up
 * to the 24-bit quantisation. Formats sharing an extension share the file, so a song holds one
 * `.mp3` per stem: whichever ran last.
 */

/** How a format's bytes are made: the codec (audio-encode/index.ts) and its fixed setting. */
export type EncoderSpec =
  | { codec: 'mp3'; /** CBR kbps; absent: VBR at the configured quality (MP3_VBR_QUALITY) */ bitrate?: number }
  | { codec: 'wav' }
  | { codec: 'flac' };

interface FormatEntry {
  /** File extension of the stored stems (`<stem>.<ext>`). */
  ext: string;
  contentType: string;
  /** The long label (format pickers). */
  label: string;
  /** The short label (download links: "Download vocals (FLAC)"). */
  short: string;
  encoder: EncoderSpec;
  /** Other formats whose request stems in this format serve (CBR 320 serves a VBR MP3 request). */
  covers: readonly string[];
  /** Decoding it gives back the stems' samples (up to 24-bit): what a mix prefers to read. */
  lossless: boolean;
}

export const FORMAT_INFO = {
  mp3: { ext: 'mp3', contentType: 'audio/mpeg', label: 'MP3 (VBR ≈190 kbps)', short: 'MP3', encoder: { codec: 'mp3' }, covers: [], lossless: false },
  'mp3-320': { ext: 'mp3', contentType: 'audio/mpeg', label: 'MP3 (CBR 320 kbps)', short: 'MP3 320', encoder: { codec: 'mp3', bitrate: 320 }, covers: ['mp3'], lossless: false },
  wav: { ext: 'wav', contentType: 'audio/wav', label: 'WAV (24-bit PCM)', short: 'WAV', encoder: { codec: 'wav' }, covers: [], lossless: true },
  flac: { ext: 'flac', contentType: 'audio/flac', label: 'FLAC (24-bit)', short: 'FLAC', encoder: { codec: 'flac' }, covers: [], lossless: true },
} as const satisfies Record<string, FormatEntry>;

export type OutputFormat = keyof typeof FORMAT_INFO;
export type Extension = (typeof FORMAT_INFO)[OutputFormat]['ext'];
export type FormatInfo = (typeof FORMAT_INFO)[OutputFormat];

/** Every output format, in the table's order (the pickers' order). */
export const OUTPUT_FORMATS = Object.keys(FORMAT_INFO) as [OutputFormat, ...OutputFormat[]];
/** What a submission that names no format gets: the lab's MP3. */
export const DEFAULT_OUTPUT_FORMAT: OutputFormat = 'mp3';

/** Every stored extension, once each, in the table's order. */
export const EXTENSIONS: readonly Extension[] = [...new Set(OUTPUT_FORMATS.map((f) => FORMAT_INFO[f].ext))];

export function isOutputFormat(value: string): value is OutputFormat {
  return Object.hasOwn(FORMAT_INFO, value);
}

export function isExtension(value: string): value is Extension {
  return (EXTENSIONS as readonly string[]).includes(value);
}

export const extensionOf = (format: OutputFormat): Extension => FORMAT_INFO[format].ext;

/** The content type of a stored file with extension `ext` (that of the first format writing it). */
export function contentTypeOf(ext: Extension): string {
  return FORMAT_INFO[OUTPUT_FORMATS.find((f) => FORMAT_INFO[f].ext === ext)!].contentType;
}

/** Whether stems stored in `have` serve a request for `want`: the same format, or one it covers (`covers`). */
export function formatCovers(have: OutputFormat, want: OutputFormat): boolean {
  return have === want || (FORMAT_INFO[have].covers as readonly string[]).includes(want);
}

/**
 * The formats a song stores after a run that adds `want` to `have`: one format per extension,
 * the requested one replacing the stored one of the same extension (mp3 → mp3-320).
 */
export function mergeFormats(have: readonly OutputFormat[], want: OutputFormat): OutputFormat[] {
  if (have.some((f) => formatCovers(f, want))) return [...have];
  return [...have.filter((f) => extensionOf(f) !== extensionOf(want)), want];
}

/**
 * The stored copy to decode when a song's stems are read back (a mix, a live stream): a lossless
 * one when the song has it (the last listed first: FLAC before WAV, fewer bytes to read), else the
 * first it has; null with none.
 */
export function decodeSource(formats: readonly OutputFormat[]): Extension | null {
  const have = formats.map(extensionOf);
  const lossless = OUTPUT_FORMATS.filter((f) => FORMAT_INFO[f].lossless).map(extensionOf).reverse();
  return lossless.find((ext) => have.includes(ext)) ?? have[0] ?? null;
}

/** What `/apiv1/info` tells a client about each output format (the page's pickers and download labels). */
export interface OutputFormatView {
  name: OutputFormat;
  ext: Extension;
  contentType: string;
  label: string;
  short: string;
}

export const OUTPUT_FORMAT_VIEWS: readonly OutputFormatView[] = OUTPUT_FORMATS.map((name) => {
  const { ext, contentType, label, short } = FORMAT_INFO[name];
  return { name, ext, contentType, label, short };
});
