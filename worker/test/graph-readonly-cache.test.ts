// The worker image ships the weights and their optimized graph in /models, which the pod's user
// (uid 1000, read-only root filesystem) cannot write; every new pod must start on that graph — no
// rebuild, no re-hash of the weights, no fingerprint run — within the cold-start target (≤ 3 s
// from process start to the model loaded). This builds such an "image" directory as the image's
// build does (scripts/prepare-model.ts in the `graph` stage), copies the weights as a new
// container's layer would (new inode and ctime, same size, mtime and bytes), and loads the model
// as a non-root user (nobody, via setpriv, when the tests run as root) with an empty cache directory.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { cachedOptimizedGraph, loadModelGraph, weightsDigest } from '../src/separation/graph/optimized-model.ts';
import { ENGINE_SESSION_DEFAULTS } from '../src/separation/engine.ts';
import { defaultModelPath } from '../src/separation/model.ts';
import { sourceDigest } from '../src/separation/graph/optimize.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NOBODY = 65534;
const COLD_START_TARGET_SEC = 3;

const PROBE = path.join(import.meta.dirname, 'helpers/load-graph-probe.ts');

interface ProbeResult {
  loadedSec: number;
  graph: string;
  graphPath: string;
  checked: string | null;
  produced: boolean;
  warnings: string[];
  uid: number;
}

const asRoot = process.getuid?.() === 0;

describe('a shipped optimized graph in a directory the worker cannot write', () => {
  let image: string;
  let cache: string;
  let graphName: string;
  const sessionOptions = { ...ENGINE_SESSION_DEFAULTS, intraOpNumThreads: 2, enableCpuMemArena: false };

  beforeAll(async () => {
    const weights = defaultModelPath();
    const shipped = await cachedOptimizedGraph(weights); // produced by test/global-setup.ts
    expect(shipped, 'the test setup produces the optimized graph').not.toBeNull();
    graphName = path.basename(shipped!);
    image = mkdtempSync(path.join(tmpdir(), 'msaas-image-models-'));
    // The image's build: weights, graph and its fingerprint in /models, then prepare-model (as root, /models writable).
    copyFileSync(weights, path.join(image, 'htdemucs.onnx'));
    const { mtime } = statSync(weights);
    utimesSync(path.join(image, 'htdemucs.onnx'), mtime, mtime);
    copyFileSync(shipped!, path.join(image, graphName));
    copyFileSync(`${shipped!}.fingerprint.json`, path.join(image, `${graphName}.fingerprint.json`));
    const built = await loadModelGraph({ modelPath: path.join(image, 'htdemucs.onnx'), graph: 'optimized', cacheDir: path.join(image, 'unused'), sessionOptions, warn: () => undefined });
    await built.model.close();
    expect(built.graphPath).toBe(path.join(image, graphName));
    rmSync(path.join(image, 'unused'), { recursive: true, force: true });
    // A new container: the layer's copy of the weights has a new inode and ctime, the same mtime and bytes.
    const copy = path.join(image, 'htdemucs.onnx.layer');
    copyFileSync(path.join(image, 'htdemucs.onnx'), copy);
    utimesSync(copy, mtime, mtime);
    renameSync(copy, path.join(image, 'htdemucs.onnx'));
    chmodSync(image, 0o555); // nobody (or a non-root owner) can create nothing in it
    cache = mkdtempSync(path.join(tmpdir(), 'msaas-pod-tmp-'));
    if (asRoot) chownSync(cache, NOBODY, NOBODY);
  }, 300_000);

  afterAll(() => {
    if (image) {
      chmodSync(image, 0o755);
      rmSync(image, { recursive: true, force: true });
    }
    if (cache) rmSync(cache, { recursive: true, force: true });
  });

  function probe(): ProbeResult {
    const node = [process.execPath, '--import', 'tsx', PROBE];
    const cmd = asRoot ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...node] : node;
    // MODEL_CACHE_DIR unset: the engine's fallback is os.tmpdir(), the pod's writable /tmp emptyDir.
    const env = { PATH: process.env.PATH ?? '', HOME: path.join(cache, 'home'), TMPDIR: cache, MODEL_PATH: path.join(image, 'htdemucs.onnx') };
    const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as ProbeResult;
  }

  /**
   * Files in the cache directory other than the runtimes' own: tsx's transform cache (tsx-<uid>/),
   * onnxruntime's session marker (.ses) and empty mat-debug-<pid>.log, and the HOME given to the probe.
   */
  const cacheFiles = (): string[] => readdirSync(cache).filter((f) => !/^tsx-\d+$/.test(f) && !/^mat-debug-\d+\.log$/.test(f) && f !== '.ses' && f !== 'home');

  it('loads the shipped graph as a non-root user: no graph produced, no fingerprint run, nothing written, within the cold-start target', () => {
    const imageBefore = readdirSync(image).sort();
    const first = probe();
    const second = probe();
    for (const r of [first, second]) {
      if (asRoot) expect(r.uid).toBe(NOBODY);
      else expect(r.uid).not.toBe(0);
      expect(r.warnings).toEqual([]);
      expect(r.graph).toBe('optimized');
      expect(r.graphPath).toBe(path.join(image, graphName));
      expect(r.produced).toBe(false);
      expect(r.checked).toBe('record'); // the validation recorded at the build, not a segment's run
    }
    expect(cacheFiles()).toEqual([]); // no graph, fingerprint, record or weights memo in the pod's cache directory
    expect(readdirSync(image).sort()).toEqual(imageBefore);
    const best = Math.min(first.loadedSec, second.loadedSec);
    // The target holds on a machine with a core per runnable process; other test files (or other
    // jobs) running beside this one stretch every process's wall time by the run queue's length.
    const contention = Math.max(1, loadavg()[0]! / availableParallelism());
    console.log(
      `cold start (process start → model loaded, non-root, read-only /models): ${first.loadedSec.toFixed(2)} s, ${second.loadedSec.toFixed(2)} s ` +
        `(target ${COLD_START_TARGET_SEC} s × contention ${contention.toFixed(2)})`,
    );
    // The 1-minute load average trails a burst (a full suite starts many processes at once), so the
    // bound allows half as much again; the target itself is measured alone (docs/kubernetes.md › 8).
    expect(best).toBeLessThanOrEqual(COLD_START_TARGET_SEC * contention * 1.5);
  }, 240_000);

  it('finds the memo the build wrote for the copied weights (new inode and ctime): the 174 MB are not read again', async () => {
    expect((await weightsDigest(path.join(image, 'htdemucs.onnx'), cache)).source).toBeUndefined();
  });
});

describe('the weights memo', () => {
  it('survives a copy that keeps size, mtime and bytes, and not a same-size rewrite whose mtime is set back', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'msaas-memo-'));
    try {
      const file = path.join(dir, 'w.onnx');
      const bytes = Buffer.alloc(4 << 20, 7); // 256 blocks of 16 KiB: sampled, not read whole
      writeFileSync(file, bytes);
      const mtime = new Date('2026-01-02T03:04:05Z');
      utimesSync(file, mtime, mtime);
      expect((await weightsDigest(file)).source).toBeDefined();
      copyFileSync(file, `${file}.copy`);
      utimesSync(`${file}.copy`, mtime, mtime);
      renameSync(`${file}.copy`, file);
      expect((await weightsDigest(file)).source).toBeUndefined(); // a copy: from the memo
      bytes[0] = 8; // the first block is always sampled
      writeFileSync(file, bytes);
      utimesSync(file, mtime, mtime);
      const again = await weightsDigest(file);
      expect(again.source).toBeDefined();
      expect(again.sha256).toBe(sourceDigest(bytes));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
