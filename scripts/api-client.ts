/** A small client of the MSaaS-TS API, shared by the sample scripts. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const TRACK_NAMES = ['drums', 'bass', 'other', 'vocals'] as const;

export interface JobStatus {
  hash: string;
  state: 'queued' | 'processing' | 'done' | 'failed';
  progress: number;
  position: number | null;
  error: string | null;
  stems: Record<string, string>;
}

/** `REST` as in the lab's scripts: host:port, with or without a scheme. Default localhost:5000. */
export function baseUrl(env: NodeJS.ProcessEnv = process.env): string {
  const rest = env.REST ?? 'localhost:5000';
  return /^https?:\/\//.test(rest) ? rest.replace(/\/$/, '') : `http://${rest}`;
}

function authHeaders(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return env.API_KEY ? { Authorization: `Bearer ${env.API_KEY}` } : {};
}

async function json<T>(res: Response): Promise<T> {
  const body = (await res.json()) as T & { error?: string; detail?: string };
  if (!res.ok) throw new Error(`HTTP ${res.status} ${body.error ?? ''}: ${body.detail ?? ''}`);
  return body;
}

/** The lab's request: base64 JSON with a callback. */
export async function submit(base: string, mp3: Uint8Array, callback?: { url: string; data: unknown }): Promise<{ hash: string; reason: string }> {
  const res = await fetch(`${base}/apiv1/separate`, {
    method: 'POST',
    headers: { 'Content-type': 'application/json', ...authHeaders() },
    body: JSON.stringify({ mp3: Buffer.from(mp3).toString('base64'), ...(callback ? { callback } : {}) }),
  });
  return json(res);
}

export async function status(base: string, hash: string): Promise<JobStatus> {
  return json(await fetch(`${base}/apiv1/jobs/${hash}`, { headers: authHeaders() }));
}

export async function queue(base: string): Promise<string[]> {
  return (await json<{ queue: string[] }>(await fetch(`${base}/apiv1/queue`, { headers: authHeaders() }))).queue;
}

/** Polls until done or failed, reporting each change. */
export async function follow(base: string, hash: string, onChange: (s: JobStatus) => void, timeoutMs = 30 * 60_000): Promise<JobStatus> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const s = await status(base, hash);
    const key = `${s.state}:${s.progress.toFixed(2)}:${s.position}`;
    if (key !== last) onChange(s);
    last = key;
    if (s.state === 'done' || s.state === 'failed') return s;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${hash} after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function downloadStems(base: string, hash: string, outDir: string, prefix: string): Promise<{ track: string; file: string; bytes: number }[]> {
  mkdirSync(outDir, { recursive: true });
  const files = [];
  for (const track of TRACK_NAMES) {
    const res = await fetch(`${base}/apiv1/track/${hash}/${track}.mp3`, { headers: authHeaders() });
    if (!res.ok) throw new Error(`download of ${track} failed: HTTP ${res.status}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const file = path.join(outDir, `${prefix}-${track}.mp3`);
    writeFileSync(file, bytes);
    files.push({ track, file, bytes: bytes.length });
  }
  return files;
}

export function describe(s: JobStatus): string {
  if (s.state === 'queued') return `queued (position ${s.position ?? '?'})`;
  if (s.state === 'processing') return `separating ${(s.progress * 100).toFixed(0)} %`;
  if (s.state === 'failed') return `failed: ${s.error}`;
  return 'done';
}
