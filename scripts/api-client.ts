/** The sample scripts' Node side of the API client (`@msaas/client`, client/): the env, stems to disk, status lines. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApiClient, type JobView, type Track } from '@msaas/client';
import { TRACKS } from '@msaas/common';

/**
 * A client as the lab's scripts are configured: `REST` is host:port, with or without a scheme
 * (default localhost:5000); `API_KEY`, when set, is sent with every request.
 */
export function clientFromEnv(env: NodeJS.ProcessEnv = process.env): ApiClient {
  const rest = env.REST ?? 'localhost:5000';
  return new ApiClient({ baseUrl: /^https?:\/\//.test(rest) ? rest : `http://${rest}`, ...(env.API_KEY ? { apiKey: env.API_KEY } : {}) });
}

/** How long the scripts follow one job before giving up. */
export const FOLLOW_TIMEOUT_MS = 30 * 60_000;

/** Downloads the four stems to `<outDir>/<prefix>-<track>.mp3`. */
export async function downloadStems(api: ApiClient, hash: string, outDir: string, prefix: string): Promise<{ track: Track; file: string; bytes: number }[]> {
  mkdirSync(outDir, { recursive: true });
  const files = [];
  for (const track of TRACKS) {
    const { bytes } = await api.stem(hash, track);
    const file = path.join(outDir, `${prefix}-${track}.mp3`);
    writeFileSync(file, bytes);
    files.push({ track, file, bytes: bytes.length });
  }
  return files;
}

export function describe(s: JobView): string {
  if (s.state === 'queued') return `queued (position ${s.position ?? '?'})`;
  if (s.state === 'processing') return `separating ${(s.progress * 100).toFixed(0)} %`;
  if (s.state === 'failed') return `failed: ${s.error}`;
  return 'done';
}
