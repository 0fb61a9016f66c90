import { createHash } from 'node:crypto';

/** The lab's song identity: SHA-224 of the uploaded bytes (any input format), 56 lowercase hex characters. */
export function songhash(bytes: Uint8Array): string {
  return createHash('sha224').update(bytes).digest('hex');
}

export const SONGHASH_RE = /^[0-9a-f]{56}$/;

export function isSonghash(value: string): boolean {
  return SONGHASH_RE.test(value);
}
