import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { songhash } from '@msaas/common';
import { ROUTES } from '../rest/src/api-routes.ts';
import { printLinesOnFailure, startStack, type Stack } from './helpers/stack.ts';
import { standinModelPath } from './helpers/standin-model.ts';
import { requireTool } from './helpers/env.ts';
import { DocumentChecker } from './helpers/openapi.ts';
import { clip, variant } from './reliability/support.ts';

/**
 * The API as a new user meets it, against a real `npm start`-like stack (rest, a worker on the
 * stand-in model, the embedded store): every documented route answers as the OpenAPI document
 * says; the SDK's README example runs; docs/api.md's curl and Python walkthroughs run as written.
 */
const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
let stack: Stack;
let checker: DocumentChecker;
let work: string;
printLinesOnFailure(() => stack?.lines);

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'msaas-walkthrough-'));
  stack = await startStack({ contract: true, env: { MODEL_PATH: standinModelPath(), RATE_LIMIT_PER_MIN: '1000000', SUBMIT_RATE_LIMIT_PER_MIN: '1000000', URL_FETCH_ALLOW_PRIVATE: 'true' } });
  checker = new DocumentChecker((await (await fetch(`${stack.url}/openapi.json`)).json()) as Record<string, unknown>);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** One request to the stack, its answer checked against the document; the body read whole. */
async function call(method: string, pathAndQuery: string, init: RequestInit = {}): Promise<{ status: number; body: unknown; bytes: Uint8Array; headers: Headers }> {
  const res = await fetch(`${stack.url}${pathAndQuery}`, { ...init, method });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const type = res.headers.get('content-type') ?? undefined;
  const body = type?.startsWith('application/json') ? JSON.parse(new TextDecoder().decode(bytes)) : undefined;
  checker.check(method, pathAndQuery, { status: res.status, contentType: type, body });
  return { status: res.status, body, bytes, headers: res.headers };
}

function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 240_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** The fenced block of `lang` under the heading `heading` of docs/api.md. */
function docBlock(heading: string, lang: string): string {
  const text = readFileSync(path.join(ROOT, 'docs/api.md'), 'utf8');
  const section = text.slice(text.indexOf(`## ${heading}`));
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)\\n```').exec(section);
  if (!m) throw new Error(`docs/api.md has no ${lang} block under "${heading}"`);
  return m[1]!;
}

describe('every documented route, against a real stack', () => {
  it('answers each request with a status, type and body the OpenAPI document describes', async () => {
    for (const p of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs', '/docs.css', '/', '/vendor/signalsmith-stretch.mjs', '/apiv1/info', '/apiv1/cluster', '/apiv1/queue']) {
      expect((await call('GET', p)).status, p).toBe(200);
    }
    const song = await clip(3, 501);
    const hash = songhash(song);
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(song)]), 'walk.mp3');
    form.append('format', 'mp3');
    expect((await call('POST', '/apiv1/separate', { body: form })).status).toBe(200);
    const lab = JSON.stringify({ mp3: Buffer.from(variant(song, 7)).toString('base64'), callback: { url: 'http://localhost:5000', data: { a: 1 } } });
    expect((await call('POST', '/apiv1/separate', { body: lab, headers: { 'Content-Type': 'application/json' } })).status).toBe(200);
    // A direct upload: the presigned URL, the PUT to the store, the submit by id.
    const direct = await call('POST', '/apiv1/uploads', { body: JSON.stringify({ filename: 'direct.mp3' }), headers: { 'Content-Type': 'application/json', 'Idempotency-Key': `walk-${hash.slice(0, 8)}` } });
    expect(direct.status).toBe(201);
    const { id, url, method, headers } = direct.body as { id: string; url: string; method: string; headers: Record<string, string> };
    expect((await fetch(url, { method, headers, body: new Uint8Array(variant(song, 9)) })).status).toBe(200);
    expect((await call('POST', '/apiv1/separate', { body: JSON.stringify({ upload: id }), headers: { 'Content-Type': 'application/json' } })).status).toBe(200);
    expect((await call('POST', '/apiv1/separate', { body: JSON.stringify({ upload: id }), headers: { 'Content-Type': 'application/json' } })).status).toBeGreaterThanOrEqual(400);
    // The event stream follows the job to its end.
    const events = await call('GET', `/apiv1/jobs/${hash}/events`);
    expect(new TextDecoder().decode(events.bytes)).toMatch(/"state":"done"/);
    expect((await call('GET', `/apiv1/jobs/${hash}`)).body).toMatchObject({ state: 'done' });
    expect((await call('GET', '/apiv1/jobs?limit=5')).status).toBe(200);
    expect((await call('GET', `/apiv1/track/${hash}/vocals.mp3`)).status).toBe(200);
    expect((await call('GET', `/apiv1/track/${hash}/bass`, { headers: { Range: 'bytes=0-99' } })).status).toBe(206);
    expect((await call('GET', `/apiv1/track/${hash}/bass`, { headers: { Range: 'bytes=999999999-' } })).status).toBe(416);
    expect((await call('GET', `/apiv1/jobs/${hash}/zip`)).status).toBe(200);
    expect((await call('GET', `/apiv1/jobs/${hash}/mix?vocals=0&format=wav`)).status).toBe(200);
    const live = await call('GET', `/apiv1/jobs/${hash}/live/vocals.mp3`);
    expect(live.status).toBe(200);
    expect(live.bytes.length).toBeGreaterThan(1000);
    // A done job's pieces go once its stems are stored (200 until the cleanup, then 404: both documented).
    expect([200, 404]).toContain((await call('GET', `/apiv1/jobs/${hash}/pieces/0`)).status);

    // Mistakes: each a documented 4xx with a code of the table.
    const mistakes: [string, string, RequestInit?][] = [
      ['GET', `/apiv1/jobs/${hash}/mix?drum=0`],
      ['GET', `/apiv1/jobs/${hash}/mix?vocals=9`],
      ['GET', `/apiv1/jobs/${hash}/zip?format=ogg`],
      ['GET', '/apiv1/jobs?limit=0'],
      ['GET', '/apiv1/jobs?cursor=x'],
      ['GET', '/apiv1/queue?x=1'],
      ['GET', `/apiv1/jobs/${'0'.repeat(56)}`],
      ['GET', '/apiv1/jobs/nothex'],
      ['GET', `/apiv1/jobs/${hash}/events?since=1`],
      ['GET', `/apiv1/jobs/${hash}/live/guitar.mp3`],
      ['GET', `/apiv1/jobs/${hash}/pieces/x`],
      ['GET', `/apiv1/track/${hash}/guitar`],
      ['POST', '/apiv1/separate', { body: '{"mp3": "!!"}', headers: { 'Content-Type': 'application/json' } }],
      ['POST', '/apiv1/separate', { body: '{"mp3": ', headers: { 'Content-Type': 'application/json' } }],
      ['POST', '/apiv1/separate', { body: JSON.stringify({ mp3: 'aGVsbG8=' }), headers: { 'Content-Type': 'application/json' } }],
      ['POST', '/apiv1/separate', { body: JSON.stringify({ mp3: 'aGVsbG8=', calback: {} }), headers: { 'Content-Type': 'application/json' } }],
      ['POST', '/apiv1/separate', { body: JSON.stringify({ url: 'http://10.0.0.1/song.mp3' }), headers: { 'Content-Type': 'application/json' } }],
      ['POST', '/apiv1/separate', { body: JSON.stringify({ upload: 'nope' }), headers: { 'Content-Type': 'application/json' } }],
      ['POST', '/apiv1/uploads', { body: JSON.stringify({ name: 'x' }), headers: { 'Content-Type': 'application/json' } }],
      ['DELETE', `/apiv1/jobs/${'0'.repeat(56)}`, { body: 'x'.repeat(100_000), headers: { 'Content-Type': 'application/json' } }],
    ];
    for (const [method, p, init] of mistakes) {
      const res = await call(method, p, init);
      expect(res.status, `${method} ${p}`).toBeGreaterThanOrEqual(400);
      expect(res.status, `${method} ${p}`).toBeLessThan(500);
    }

    // Removing: a stem (DELETE and the lab's GET/DELETE remove), then the song; again: 404.
    expect((await call('DELETE', `/apiv1/track/${hash}/drums`)).status).toBe(200);
    expect((await call('GET', `/apiv1/remove/${hash}/bass`)).status).toBe(200);
    expect((await call('DELETE', `/apiv1/remove/${hash}/other`)).status).toBe(200);
    expect((await call('DELETE', `/apiv1/remove/${hash}/other`)).status).toBe(404);
    expect((await call('DELETE', `/apiv1/jobs/${hash}`)).status).toBe(200);
    expect((await call('DELETE', `/apiv1/jobs/${hash}`)).status).toBe(404);

    // Every documented route was exercised with a success it documents, but a piece's 200 (a
    // running job's moment: test/reliability and rest/test/live-stream.test.ts cover it).
    const succeeded = new Set([...checker.seen].filter((s) => /\s2\d\d$/.test(s)).map((s) => s.replace(/\s\d+$/, '')));
    const expected = ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`).filter((r) => r !== 'GET /apiv1/jobs/{songhash}/pieces/{seq}');
    expect(expected.filter((r) => !succeeded.has(r))).toEqual([]);
  }, 240_000);
});

describe('the SDK (@msaas/client)', () => {
  it('runs its README\'s example as written: upload, progress over SSE, the vocals as FLAC', async () => {
    const readme = readFileSync(path.join(ROOT, 'client/README.md'), 'utf8');
    const example = readFileSync(path.join(ROOT, 'client/example.ts'), 'utf8');
    expect(readme).toContain(example.trim());
    expect(example.trim().split('\n').length).toBeLessThanOrEqual(10);
    const dir = mkdtempSync(path.join(work, 'sdk-'));
    const song = await clip(3, 502);
    writeFileSync(path.join(dir, 'song.mp3'), song);
    const { code, out } = await run(path.join(ROOT, 'node_modules/.bin/tsx'), [path.join(ROOT, 'client/example.ts'), 'song.mp3'], { cwd: dir, env: { MSAAS_URL: stack.url } });
    expect(code, out).toBe(0);
    expect(out).toContain(songhash(song));
    expect(out).toMatch(/^done 100 %$/m);
    expect(out).toMatch(/vocals\.flac: \d+ bytes \(audio\/flac\)/);
    expect(readFileSync(path.join(dir, 'vocals.flac')).subarray(0, 4).toString('latin1')).toBe('fLaC');
  }, 240_000);
});

describe('the SDK\'s other ways in', () => {
  it('submits by direct upload and by URL (each with an Idempotency-Key), follows over SSE, reads the library and cancels', async () => {
    const { api } = stack;
    const direct = variant(await clip(2, 504), 1);
    const first = await api.uploadDirect(direct, { filename: 'direct.mp3', idempotencyKey: 'sdk-direct-1' });
    expect(first).toMatchObject({ hash: songhash(direct), result: 'enqueued' });
    const served = variant(await clip(2, 504), 2);
    const server = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'audio/mpeg' }).end(served));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/song.mp3`;
      const byUrl = await api.submitUrl(url, { idempotencyKey: 'sdk-url-1', format: 'flac' });
      expect(byUrl.hash).toBe(songhash(served));
      expect(await api.submitUrl(url, { idempotencyKey: 'sdk-url-1', format: 'flac' })).toEqual(byUrl);
    } finally {
      server.close();
    }
    let last = '';
    for await (const job of api.events(first.hash)) last = job.state;
    expect(last).toBe('done');
    expect((await api.library({ limit: 10 })).songs.map((s) => s.hash)).toContain(first.hash);
    expect(await api.cancel(songhash(served))).toMatchObject({ removed: true });
    await expect(api.job(songhash(served))).rejects.toMatchObject({ status: 404, error: 'not_found' });
  }, 240_000);
});

const curl = requireTool('curl', { probe: ['--version'], neededFor: "docs/api.md's curl walkthrough", install: 'apt-get install curl' });
const python = requireTool('python3', { probe: ['--version'], neededFor: "docs/api.md's Python walkthrough", install: 'apt-get install python3' });

describe('docs/api.md', () => {
  curl.it('its curl walkthrough runs as written (bash -e, every call that should succeed with curl -f)', async () => {
    const script = docBlock('Walkthrough with curl', 'sh');
    const dir = mkdtempSync(path.join(work, 'curl-'));
    const { code, out } = await run('bash', ['-e', '-o', 'pipefail', '-c', script], { env: { B: stack.url, W: dir } });
    expect(code, out).toBe(0);
    expect(out).toMatch(/"weights":\{"file":"/);
    expect(out).toMatch(/"error":"unknown_field","detail":"unknown `drum`/);
    expect(out).toMatch(/HTTP\/1\.1 206/);
    expect(out).toMatch(/^200 text\/html/m);
  }, 300_000);

  python.it('its Python walkthrough runs as written', async () => {
    const dir = mkdtempSync(path.join(work, 'python-'));
    writeFileSync(path.join(dir, 'song.mp3'), await clip(3, 503));
    writeFileSync(path.join(dir, 'walkthrough.py'), docBlock('The same in Python', 'python'));
    const { code, out } = await run('python3', ['walkthrough.py'], { cwd: dir, env: { B: stack.url, SONG: path.join(dir, 'song.mp3') } });
    expect(code, out).toBe(0);
    expect(out).toMatch(/vocals\.flac: \d+ bytes/);
    expect(out).toMatch(/400 unknown_field - unknown `fromat`/);
  }, 300_000);
});
