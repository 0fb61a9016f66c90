/**
 * Hostile-input fuzzing of every rest endpoint over real sockets, against the real app wired to real
 * Redis and a real S3-compatible server. Seeded: FUZZ_SEED reproduces a run, FUZZ_RUNS scales it.
 *
 * Scope: everything Express answers must be a 2xx/3xx where the input is valid, else a 4xx JSON
 * `{error, detail}`; never a 5xx, never a stack trace. Requests so malformed that Node's HTTP parser
 * rejects them before Express sees them (bad request line, NUL or bare control characters in the
 * target, conflicting Content-Length/Transfer-Encoding, oversized header block, unknown Expect)
 * get Node's own bodiless 4xx (400/431/417) and the connection is closed; those are checked for
 * being 4xx and for leaving the process healthy, not for a JSON body.
 *
 * Generators: ./fuzz/arbitraries.ts; what counts as a correct answer: ./fuzz/judge.ts; the app under
 * test: ./fuzz/target.ts. Slow and stalled clients: ./fuzz-slow-clients.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readdirSync, statSync } from 'node:fs';
import type { RestService } from '../src/bootstrap.ts';
import type { TestStore } from '../../test/helpers/env.ts';
import { buildRequest, rawRequest, type RawOutcome } from './helpers/raw-http.ts';
import { MARK, fuzzArbitraries } from './fuzz/arbitraries.ts';
import { judge, newTally } from './fuzz/judge.ts';
import { REPO, repoSkip, startFuzzTarget, walk, type FuzzTarget } from './fuzz/target.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 160); // batches
const BATCH = 8; // requests in flight at once

let target: FuzzTarget;
let store: TestStore;
let rest: RestService;
let port: number;
let privateTmp: string;
let savedTmpdir: string | undefined;
let errorLogs: string[];
let processErrors: string[];
let repoBefore: Set<string>;
let pool: Buffer[];
let doneHash: string;

beforeAll(async () => {
  target = await startFuzzTarget('fuzz');
  ({ store, rest, port, privateTmp, savedTmpdir, errorLogs, processErrors, repoBefore } = target);
  ({ pool, doneHash } = target.corpus);
  console.log(`[fuzz] seed ${SEED} (override with FUZZ_SEED), ${RUNS} batches of ${BATCH} requests; rest on 127.0.0.1:${port}`);
});

afterAll(async () => {
  await target?.close();
});

describe('hostile input', () => {
  const tally = newTally();

  it('answers ≥ 1,000 seeded hostile requests over every endpoint with 2xx or a 4xx JSON {error, detail}: no 5xx, no hang, no stack trace', async () => {
    const started = Date.now();
    const failures: string[] = [];
    const { anyRequest } = fuzzArbitraries(target.corpus);
    const details = await fc.check(
      fc.asyncProperty(fc.array(anyRequest(), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const outcomes = await Promise.all(batch.map((s) => rawRequest(port, s.bytes, { deadlineMs: 15_000 })));
        const bad = batch.map((s, i) => [s, judge(s, outcomes[i]!, tally)] as const).filter(([, v]) => v !== null);
        for (const [s, v] of bad) failures.push(`[${s.cat}] ${s.label}\n    → ${v}`);
        return bad.length === 0;
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    if (details.failed) {
      throw new Error(`fuzz failed (seed ${SEED}, path ${details.counterexamplePath}):\n${failures.slice(0, 12).join('\n')}${details.errorInstance ? `\n${String(details.errorInstance).slice(0, 500)}` : ''}`);
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `[fuzz] ${tally.total} requests in ${seconds.toFixed(1)} s (seed ${SEED}); by category ${JSON.stringify(tally.byCat)}; ` +
        `by status ${JSON.stringify(tally.byStatus)}; by error ${JSON.stringify(tally.byError)}; summed latency ms by category ${JSON.stringify(tally.msByCat)}; answered by Node's parser: ${tally.parser}; songs accepted: ${tally.accepted.size}`,
    );
    expect(tally.total).toBeGreaterThanOrEqual(1000);
    expect(seconds).toBeLessThan(60);
    for (const cat of ['separate-json', 'separate-multipart', 'path-track', 'path-remove', 'path-jobs', 'path-events', 'path-zip', 'endpoints', 'malformed']) {
      expect(tally.byCat[cat], cat).toBeGreaterThan(10);
    }
  });

  it('kept the process alive and healthy, logged no internal error, kept metric labels bounded', async () => {
    expect(processErrors).toEqual([]);
    expect(errorLogs.filter((l) => /request failed/.test(l))).toEqual([]);
    const health = await rawRequest(port, buildRequest('GET', '/healthz'));
    expect(health.kind === 'response' && health.status).toBe(200);
    const metrics = await rawRequest(port, buildRequest('GET', '/metrics'));
    expect(metrics.kind).toBe('response');
    const series = metrics.kind === 'response' ? metrics.body.toString().split('\n').filter((l) => l.startsWith('msaas_http_requests_total{')) : [];
    console.log(`[fuzz] msaas_http_requests_total has ${series.length} label sets after the run`);
    // one label set per route × method × status, not one per hostile path
    expect(series.length).toBeLessThan(150);
    expect(series.some((l) => l.includes(MARK) || l.includes('%2e%2e') || l.includes('passwd'))).toBe(false);
  });

  it('really enqueued every accepted song, under the test prefix', async () => {
    expect(tally.accepted.size).toBeGreaterThan(10);
    const waiting = new Set(await rest.deps.queue.waiting());
    for (const hash of tally.accepted) {
      if (tally.deleted.has(hash) || hash === doneHash) continue;
      const job = await rest.deps.queue.getJob(hash);
      expect(job?.state, hash).toBe('queued');
      expect(waiting.has(hash), hash).toBe(true);
      expect(await rest.deps.store.hasUpload(hash), hash).toBe(true);
    }
  });

  it('wrote no file outside the queue and output buckets', () => {
    const objectName = /^(queue\/[0-9a-f]{56}\.mp3|output\/[0-9a-f]{56}-(drums|bass|other|vocals)\.mp3)\._S3rver_(object|object\.md5|metadata\.json)$/;
    const stray = walk(store.dir).filter((rel) => !(rel === 'queue' || rel === 'output' || objectName.test(rel)));
    expect(stray).toEqual([]);
    expect(walk(privateTmp)).toEqual([]);
    // Where a service could plausibly spill files (its own folders, var/, the working directory itself).
    // Other engineers write elsewhere in the tree while this runs, so only these are compared.
    // Other test files (run in parallel) create the gitignored artifact folders test-output/, output/, samples/ at the root.
    const otherTestsArtifacts = /^(test-output|bench-output|output|samples)(\/|$)/;
    const watched = (rel: string): boolean => !otherTestsArtifacts.test(rel) && (/^(rest|common|logs|var)(\/|$)/.test(rel) || !rel.includes('/'));
    const added = walk(REPO, repoSkip).filter((rel) => !repoBefore.has(rel) && watched(rel));
    expect(added).toEqual([]);
    const marked = [...walk(REPO, repoSkip), ...readdirSync(savedTmpdir ?? '/tmp'), ...readdirSync('/')].filter((n) => n.includes(MARK));
    expect(marked).toEqual([]);
    expect(statSync(store.dir).isDirectory()).toBe(true);
  });
});

describe('regressions the fuzz found', () => {
  const post = (body: string): Promise<RawOutcome> => rawRequest(port, buildRequest('POST', '/apiv1/separate', [['Content-Type', 'application/json']], Buffer.from(body)));
  const expect400 = (o: RawOutcome, detail: RegExp): void => {
    expect(o.kind === 'response' && o.status).toBe(400);
    if (o.kind === 'response') expect(JSON.parse(o.body.toString()).detail).toMatch(detail);
  };

  it('refuses callback data nested too deeply to serialize with a 400 (was a 500 at enqueue)', async () => {
    const deep = `${'['.repeat(50_000)}1${']'.repeat(50_000)}`;
    expect400(await post(`{"mp3":"${pool[2]!.toString('base64')}","callback":{"url":"https://hooks.example.com/x","data":${deep}}}`), /callback\.data: cannot be serialized/);
  });

  it('refuses callback data over 4 KiB with a 400 bad_callback that names the limit', async () => {
    const res = await post(JSON.stringify({ mp3: pool[2]!.toString('base64'), callback: { url: 'https://hooks.example.com/x', data: 'd'.repeat(4200) } }));
    expect400(res, /callback\.data: must be at most 4 KiB/);
    expect(res.kind === 'response' && JSON.parse(res.body.toString()).error).toBe('bad_callback');
  });

  it('answers HEAD on an event stream at once instead of holding the socket', async () => {
    const o = await rawRequest(port, buildRequest('HEAD', `/apiv1/jobs/${doneHash}/events`), { deadlineMs: 1000 });
    expect(o.kind === 'response' && o.status).toBe(200);
    expect(o.ms).toBeLessThan(1000);
  });
});
