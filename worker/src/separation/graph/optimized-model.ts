// Loads the model on the rewritten graph: produced once from the source weights, cached next to
// them (or in a fallback directory) under a key of the source's content and the pass version,
// and validated at every load — signature (Model.load) plus a fingerprint run compared with the
// original graph's outputs recorded when the cache was produced. A missing, stale or corrupted
// cache is rebuilt; if the rebuild fails the original graph is used, with a warning.
import { access, constants, mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Model, type SessionOptions } from '../model.ts';
import { DEFAULT_PROFILE, type QualityProfile } from '@msaas/common';
import { optimizeGraph, optimizedGraphKeyOf, sourceDigest, type PassReport } from './optimize.ts';
import { fingerprintDistance, fingerprintInput, fingerprintOf, fingerprintSnrDb, isFingerprint, type Fingerprint } from './fingerprint.ts';

/** Which graph the session runs: the weights' file as is, or its rewrite for the quality profile. */
export type GraphChoice = 'original' | 'optimized';
/** 'exact' must agree with the original's fingerprint within this max abs difference. */
export const GRAPH_TOLERANCE = 1e-4;
/** 'int8-transformer' must keep this signal-to-error ratio on the fingerprint (it measures 40–45 dB; a broken graph is near 0). */
export const INT8_MIN_SNR_DB = 30;

/** How a graph's fingerprint compares with the original's. */
export interface Agreement {
  /** Max abs difference. */
  distance: number;
  /** Signal-to-error ratio in dB (the worse output's). */
  snrDb: number;
}

const agreementOf = (reference: Fingerprint, got: Fingerprint): Agreement => ({ distance: fingerprintDistance(reference, got), snrDb: fingerprintSnrDb(reference, got) });

/** Whether a profile's graph is close enough to the original: exact within GRAPH_TOLERANCE, int8 above INT8_MIN_SNR_DB. */
const accepts = (profile: QualityProfile, a: Agreement): boolean => (profile === 'exact' ? a.distance <= GRAPH_TOLERANCE : a.snrDb >= INT8_MIN_SNR_DB);

const describe = (profile: QualityProfile, a: Agreement): string =>
  profile === 'exact' ? `max abs ${a.distance} (tolerance ${GRAPH_TOLERANCE})` : `SNR ${a.snrDb.toFixed(1)} dB (at least ${INT8_MIN_SNR_DB} dB)`;

export interface LoadGraphOptions {
  modelPath: string;
  graph: GraphChoice;
  /** What the rewrite trades (with graph 'optimized'). Default 'exact'. */
  profile?: QualityProfile;
  /** Where the cache goes when the weights' directory is not writable. Default os.tmpdir(). */
  cacheDir?: string;
  sessionOptions: SessionOptions;
  warn: (message: string) => void;
}

export interface LoadedGraph {
  model: Model;
  /** The file the session runs. */
  graphPath: string;
  graph: GraphChoice;
  /** The profile the session runs: 'exact' for the original graph and for a fallback to it. */
  profile: QualityProfile;
  /** Set when this load produced the cached graph. */
  produced?: { report: PassReport[]; agreement: Agreement };
}

/**
 * `<weights name>.<key>.onnx` ('exact') or `<weights name>.<profile>.<key>.onnx`, the key from the
 * weights' sha-256 and the profile's passes: each profile has its own stem, so producing one never
 * removes another's cache (removeOtherVersions keeps stems apart).
 */
const cacheFileName = (modelPath: string, weightsSha: string, profile: QualityProfile): string =>
  `${path.basename(modelPath).replace(/\.onnx$/i, '')}${profile === 'exact' ? '' : `.${profile}`}.${optimizedGraphKeyOf(weightsSha, profile)}.onnx`;

/** Where the cache may live, in order of preference: the weights' directory, then cacheDir (default os.tmpdir()). */
const cacheDirs = (modelPath: string, cacheDir?: string): string[] => [path.dirname(modelPath), cacheDir ?? tmpdir()];

/** The first writable of cacheDirs (created if missing). */
async function writableCacheDir(modelPath: string, cacheDir?: string): Promise<string> {
  const dirs = cacheDirs(modelPath, cacheDir);
  for (const dir of dirs) {
    try {
      await mkdir(dir, { recursive: true });
      await access(dir, constants.W_OK);
      return dir;
    } catch {
      // next candidate
    }
  }
  throw new Error(`no writable directory for the optimized graph (tried ${dirs.join(', ')}; set MODEL_CACHE_DIR)`);
}

/** The cached graph's path in the first writable of: the weights' directory, cacheDir, os.tmpdir(). */
export async function cachePathFor(modelPath: string, weightsSha: string, cacheDir?: string, profile: QualityProfile = DEFAULT_PROFILE): Promise<string> {
  return path.join(await writableCacheDir(modelPath, cacheDir), cacheFileName(modelPath, weightsSha, profile));
}

export const fingerprintPathFor = (graphPath: string): string => `${graphPath}.fingerprint.json`;

/** `<weights>.sha256.json`: the weights' digest and the file identity it was computed for. */
const digestMemoName = (modelPath: string): string => `${path.basename(modelPath)}.sha256.json`;

interface DigestMemo {
  identity: string;
  sha256: string;
}

/** Device, inode, size, mtime and ctime in ns: any write to the file (or a replacement) changes ctime, which no user can set back. */
async function fileIdentity(file: string): Promise<string> {
  const s = await stat(file, { bigint: true });
  return [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join(':');
}

/**
 * The weights' sha-256 without reading 174 MB at every start: memoized beside the cache (in the
 * weights' directory or cacheDir) for the file identity it was computed from; computed (and the
 * memo written, best effort) when no memo matches. `source` is set when the file had to be read.
 */
export async function weightsDigest(modelPath: string, cacheDir?: string): Promise<{ sha256: string; source?: Uint8Array }> {
  const identity = await fileIdentity(modelPath);
  const name = digestMemoName(modelPath);
  for (const dir of cacheDirs(modelPath, cacheDir)) {
    try {
      const memo = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Partial<DigestMemo>;
      if (memo.identity === identity && typeof memo.sha256 === 'string' && /^[0-9a-f]{64}$/.test(memo.sha256)) return { sha256: memo.sha256 };
    } catch {
      // no memo there
    }
  }
  const source = await readFile(modelPath);
  const sha256 = sourceDigest(source);
  // a file replaced while it was read gets no memo: the next start reads it again
  if ((await fileIdentity(modelPath)) === identity) {
    try {
      await writeFileAtomic(path.join(await writableCacheDir(modelPath, cacheDir), name), JSON.stringify({ identity, sha256 } satisfies DigestMemo));
    } catch {
      // unwritable: the digest is computed at every start
    }
  }
  return { sha256, source };
}

/** Writes `bytes` to `file` via a temporary file in the same directory and a rename (never a torn file). */
export async function writeFileAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Runs the fixed fingerprint input through a loaded model. */
export async function runFingerprint(model: Model): Promise<Fingerprint> {
  const { mix, spec } = fingerprintInput();
  const out = await model.run(mix, spec);
  return fingerprintOf(out.freq, out.time);
}

async function readFingerprint(file: string): Promise<Fingerprint | null> {
  try {
    const v: unknown = JSON.parse(await readFile(file, 'utf8'));
    return isFingerprint(v) ? v : null;
  } catch {
    return null;
  }
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The cached graph if it loads, has the signature and reproduces the recorded fingerprint; else null (and it is removed). */
async function loadCached(graphPath: string, profile: QualityProfile, opts: LoadGraphOptions): Promise<Model | null> {
  const expected = await readFingerprint(fingerprintPathFor(graphPath));
  if (!expected) return null;
  let model: Model | null = null;
  try {
    model = await Model.load(graphPath, opts.sessionOptions);
    const agreement = agreementOf(expected, await runFingerprint(model));
    if (accepts(profile, agreement)) return model;
    opts.warn(`optimized graph ${graphPath} differs from the original's fingerprint (${describe(profile, agreement)}): rebuilding it`);
  } catch (err) {
    opts.warn(`optimized graph ${graphPath} failed to load (${message(err)}): rebuilding it`);
  }
  await model?.close();
  await unlink(graphPath).catch(() => undefined);
  await unlink(fingerprintPathFor(graphPath)).catch(() => undefined);
  return null;
}

/** Deletes graphs (and fingerprints) cached beside `graphPath` under other keys: older pass versions or weights. */
async function removeOtherVersions(graphPath: string): Promise<void> {
  const dir = path.dirname(graphPath);
  const [, stem] = /^(.*)\.[0-9a-f]{16}\.onnx$/.exec(path.basename(graphPath)) ?? [];
  if (!stem) return;
  const mine = path.basename(graphPath);
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const m = /^(.*)\.[0-9a-f]{16}\.onnx(\.fingerprint\.json)?$/.exec(f);
    if (m && m[1] === stem && !f.startsWith(mine)) await unlink(path.join(dir, f)).catch(() => undefined);
  }
}

/** The original graph's fingerprint; its load errors (not ONNX, wrong signature) are the caller's to see. */
async function originalFingerprint(opts: LoadGraphOptions): Promise<Fingerprint> {
  const original = await Model.load(opts.modelPath, opts.sessionOptions);
  try {
    return await runFingerprint(original);
  } finally {
    await original.close();
  }
}

/** Checks the optimized graph `bytes` against the original's fingerprint, and caches both. */
async function produce(bytes: Uint8Array, report: PassReport[], graphPath: string, profile: QualityProfile, reference: Fingerprint, opts: LoadGraphOptions): Promise<LoadedGraph> {
  await writeFileAtomic(graphPath, bytes);
  let model: Model | null = null;
  try {
    model = await Model.load(graphPath, opts.sessionOptions);
    const agreement = agreementOf(reference, await runFingerprint(model));
    if (!accepts(profile, agreement)) throw new Error(`its outputs are too far from the original's: ${describe(profile, agreement)}`);
    await writeFileAtomic(fingerprintPathFor(graphPath), JSON.stringify(reference));
    await removeOtherVersions(graphPath);
    return { model, graphPath, graph: 'optimized', profile, produced: { report, agreement } };
  } catch (err) {
    await model?.close();
    await unlink(graphPath).catch(() => undefined);
    throw err;
  }
}

/**
 * The model on the graph `opts.graph` asks for. With 'optimized', any failure to produce or
 * validate the rewritten graph falls back to the original (warned), which is the exact profile;
 * errors of the original file itself are thrown as ModelFileError, as with 'original'.
 */
export async function loadModelGraph(opts: LoadGraphOptions): Promise<LoadedGraph> {
  const profile = opts.profile ?? DEFAULT_PROFILE;
  const original = async (): Promise<LoadedGraph> => ({
    model: await Model.load(opts.modelPath, opts.sessionOptions),
    graphPath: opts.modelPath,
    graph: 'original',
    profile: 'exact',
  });
  if (opts.graph === 'original') return original();
  let digest: Awaited<ReturnType<typeof weightsDigest>>;
  try {
    digest = await weightsDigest(opts.modelPath, opts.cacheDir);
  } catch {
    return original(); // Model.load names the path and the problem
  }
  let graphPath: string;
  try {
    graphPath = await cachePathFor(opts.modelPath, digest.sha256, opts.cacheDir, profile);
  } catch (err) {
    opts.warn(`${message(err)}: running the original graph`);
    return original();
  }
  const cached = await loadCached(graphPath, profile, opts);
  if (cached) return { model: cached, graphPath, graph: 'optimized', profile };
  let rewritten: ReturnType<typeof optimizeGraph>;
  try {
    rewritten = optimizeGraph(digest.source ?? (await readFile(opts.modelPath)), profile);
  } catch (err) {
    opts.warn(`could not rewrite the graph of ${opts.modelPath} (${message(err)}): running the original graph`);
    return original();
  }
  // Weights whose graph has none of the patterns (another export, a test stand-in): nothing to cache.
  if (rewritten.report.every((r) => r.rewritten === 0)) return original();
  const reference = await originalFingerprint(opts);
  try {
    return await produce(rewritten.bytes, rewritten.report, graphPath, profile, reference, opts);
  } catch (err) {
    opts.warn(`could not produce the optimized graph from ${opts.modelPath} (${message(err)}): running the original graph`);
    return original();
  }
}

/**
 * The cached optimized graph of `modelPath` when it and its fingerprint are on disk (not
 * validated: the engine does that at load), else null. Lets a setup step skip producing it.
 */
export async function cachedOptimizedGraph(modelPath: string, cacheDir?: string, profile: QualityProfile = DEFAULT_PROFILE): Promise<string | null> {
  const name = cacheFileName(modelPath, (await weightsDigest(modelPath, cacheDir)).sha256, profile);
  for (const dir of cacheDirs(modelPath, cacheDir)) {
    const graphPath = path.join(dir, name);
    try {
      await access(graphPath, constants.R_OK);
      await access(fingerprintPathFor(graphPath), constants.R_OK);
      return graphPath;
    } catch {
      // next candidate
    }
  }
  return null;
}
