import type { Queue } from '@msaas/common';

/** Longest song-name part of a download name, in characters (file systems allow 255 bytes). */
const MAX_NAME_CHARS = 120;

/**
 * The song's name as a file-name stem: the uploaded file name without its extension, with
 * path separators, control and reserved characters replaced and whitespace collapsed.
 * Empty when nothing usable is left.
 */
export function songStem(filename: string | null | undefined): string {
  if (!filename) return '';
  const base = filename.replace(/^.*[\\/]/, '').replace(/\.[A-Za-z0-9]{1,5}$/, '');
  return [...base
    .normalize('NFC')
    .replace(/[\p{Cc}\p{Cf}<>:"/\\|?*]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^[.\s-]+|[.\s]+$/g, '')]
    .slice(0, MAX_NAME_CHARS)
    .join('')
    .trim();
}

/** `<song name>-<part>.<ext>`, or `<hash>-<part>.<ext>` when no name is known. */
export function downloadName(filename: string | null | undefined, hash: string, part: string, ext: string): string {
  return `${songStem(filename) || hash}-${part}.${ext}`;
}

/** The ASCII fallback of a name for the plain `filename=` parameter: accents dropped, anything else non-ASCII as `_`. */
export function asciiFallback(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/g, '_')
    .replace(/["\\]/g, '_');
}

/** RFC 5987 `ext-value` characters: everything else percent-encoded as UTF-8. */
const rfc5987 = (s: string): string => encodeURIComponent(s).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** A Content-Disposition header (RFC 6266): an ASCII `filename=` and, when the name is not plain ASCII, `filename*=UTF-8''…`. */
export function contentDisposition(type: 'inline' | 'attachment', name: string): string {
  const ascii = asciiFallback(name);
  return ascii === name ? `${type}; filename="${name}"` : `${type}; filename="${ascii}"; filename*=UTF-8''${rfc5987(name)}`;
}

/**
 * The name the caller gave the song (its claim's file name), or null: none recorded, no claim
 * (the implicit tenant's store-only songs), or Redis unreadable — a download never fails for its name.
 */
export async function songFilename(queue: Queue, hash: string, tenant: string): Promise<string | null> {
  try {
    return (await queue.getClaim(hash, tenant))?.filename ?? null;
  } catch {
    return null;
  }
}
