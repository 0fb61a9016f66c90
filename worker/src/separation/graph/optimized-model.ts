// Loads the model on the rewritten graph: produced once from the source weights, cached next to
// them (or in a fallback directory) under a key of the source's content and the pass version.
// A cached graph is validated once — signature (Model.load) plus a fingerprint run compared with
// the original graph's outputs — and the validation recorded beside it (validation.ts); a load
// that finds the same graph bytes, reference and runtime trusts that record (a sha-256 of the
// file, read while the session loads, instead of a segment's run). Every cache directory is
// searched, read-only ones included (an image's /models); a new graph goes to the first writable
// one. A missing, stale or corrupted cache is rebuilt; if the rebuild fails the original graph is
// used, with a warning.
import { access, constants, mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Model, type SessionOptions } from '../model.ts';
import { DEFAULT_PROFILE, type QualityProfile } from '@msaas/common';
import { optimizeGraph, optimizedGraphKeyOf, sourceDigest, type PassReport } from './optimize.ts';
import { fileSha256, weightsDigest as digestOfWeights, writeFileAtomic } from './file-digest.ts';
import { readValidations, runtimeKeyOf, textSha256, validationNameFor, type ValidationRecord } from './validation.ts';
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
  /** How a cached graph was trusted: a validation record matching its bytes and this runtime, or a fingerprint run now. */
  checked?: CachedCheck;
}

export type CachedCheck = 'record' | 'fingerprint';

/**
 * `<weights name>.<key>.onnx` ('exact') or `<weights name>.<profile>.<key>.onnx`, the key from the
 * weights' sha-256 and the profile's passes: each profile has its own stem, so producing one never
 * removes another's cache (removeOtherVersions keeps stems apart).
 */
const cacheFileName = (modelPath: string, weightsSha: string, profile: QualityProfile): string =>
  `${path.basename(modelPath).replace(/\.onnx$/i, '')}${profile === 'exact' ? '' : `.${profile}`}.${optimizedGraphKeyOf(weightsSha, profile)}.onnx`;

/** Where the cache may live, in order of preference: the weights' directory, then cacheDir (default os.tmpdir()). */
export const cacheDirs = (modelPath: string, cacheDir?: string): string[] => [path.dirname(modelPath), cacheDir ?? tmpdir()];

/** The first writable of `dirs` (created if missing). */
async function firstWritable(dirs: string[]): Promise<string> {
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

/** Where a new graph is written: the first writable of the weights' directory, cacheDir, os.tmpdir(). */
export async function cachePathFor(modelPath: string, weightsSha: string, cacheDir?: string, profile: QualityProfile = DEFAULT_PROFILE): Promise<string> {
  return path.join(await firstWritable(cacheDirs(modelPath, cacheDir)), cacheFileName(modelPath, weightsSha, profile));
}

export const fingerprintPathFor = (graphPath: string): string => `${graphPath}.fingerprint.json`;

/**
 * The weights' sha-256, from a memo in any cache directory while the file keeps its identity
 * (file-digest.ts: size, mtime, sampled content), else read and hashed (`source` set) and the memo
 * written to the first writable directory.
 */
export async function weightsDigest(modelPath: string, cacheDir?: string): Promise<{ sha256: string; source?: Uint8Array }> {
  const dirs = cacheDirs(modelPath, cacheDir);
  return digestOfWeights(modelPath, dirs, () => firstWritable(dirs));
}

export { writeFileAtomic };

/** Runs the fixed fingerprint input through a loaded model. */
export async function runFingerprint(model: Model): Promise<Fingerprint> {
  const { mix, spec } = fingerprintInput();
  const out = await model.run(mix, spec);
  return fingerprintOf(out.freq, out.time);
}

async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return null;
  }
}

function parseFingerprint(text: string): Fingerprint | null {
  try {
    const v: unknown = JSON.parse(text);
    return isFingerprint(v) ? v : null;
  } catch {
    return null;
  }
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** JSON has no Infinity: an error-free SNR is recorded as null. */
const recordedSnr = (a: Agreement): number | null => (Number.isFinite(a.snrDb) ? a.snrDb : null);
const agreementOfRecord = (r: ValidationRecord): Agreement => ({ distance: r.distance, snrDb: r.snrDb ?? Infinity });

/** Records that `graphPath` (bytes `graphSha256`) passed against the reference fingerprint text: beside it, else in the first writable cache directory. */
async function recordValidation(graphPath: string, graphSha256: string, fingerprintText: string, profile: QualityProfile, agreement: Agreement, opts: LoadGraphOptions): Promise<void> {
  const runtime = runtimeKeyOf(opts.sessionOptions);
  const record: ValidationRecord = {
    graph: path.basename(graphPath),
    graphSha256,
    fingerprintSha256: textSha256(fingerprintText),
    runtime,
    profile,
    distance: agreement.distance,
    snrDb: recordedSnr(agreement),
    validatedAt: new Date().toISOString(),
  };
  try {
    const dir = await firstWritable([path.dirname(graphPath), ...cacheDirs(opts.modelPath, opts.cacheDir)]);
    await writeFileAtomic(path.join(dir, validationNameFor(graphPath, runtime)), JSON.stringify(record));
  } catch {
    // nowhere to write: the next load runs the fingerprint again
  }
}

/** Removes a cached graph, its fingerprint and its validation records (best effort: a read-only directory keeps them). */
async function removeCached(graphPath: string): Promise<void> {
  const dir = path.dirname(graphPath);
  const name = path.basename(graphPath);
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (f === name || (f.startsWith(`${name}.`) && (f.endsWith('.fingerprint.json') || f.endsWith('.validated.json')))) await unlink(path.join(dir, f)).catch(() => undefined);
  }
}

/**
 * The cached graph at `graphPath` if it loads with the signature and either a validation record
 * matches its bytes, its reference and this runtime, or it reproduces the reference fingerprint
 * now (then recorded); else null (and it is removed where that is possible).
 */
async function loadCached(graphPath: string, profile: QualityProfile, opts: LoadGraphOptions): Promise<{ model: Model; checked: CachedCheck } | null> {
  const fingerprintText = await readText(fingerprintPathFor(graphPath));
  const expected = fingerprintText === null ? null : parseFingerprint(fingerprintText);
  if (!expected || fingerprintText === null) return null;
  const runtime = runtimeKeyOf(opts.sessionOptions);
  let model: Model | null = null;
  try {
    // the session loads on its own thread while this one hashes the file it loads
    const loading = Model.load(graphPath, opts.sessionOptions);
    const [graphSha256, records] = await Promise.all([fileSha256(graphPath), readValidations(graphPath, runtime, cacheDirs(opts.modelPath, opts.cacheDir))]).catch(
      async (err: unknown) => {
        await loading.then((m) => m.close(), () => undefined);
        throw err;
      },
    );
    model = await loading;
    const fingerprintSha256 = textSha256(fingerprintText);
    const vouched = records.some(
      (r) => r.graphSha256 === graphSha256 && r.fingerprintSha256 === fingerprintSha256 && r.profile === profile && accepts(profile, agreementOfRecord(r)),
    );
    if (vouched) return { model, checked: 'record' };
    const agreement = agreementOf(expected, await runFingerprint(model));
    if (accepts(profile, agreement)) {
      await recordValidation(graphPath, graphSha256, fingerprintText, profile, agreement, opts);
      return { model, checked: 'fingerprint' };
    }
    opts.warn(`optimized graph ${graphPath} differs from the original's fingerprint (${describe(profile, agreement)}): rebuilding it`);
  } catch (err) {
    opts.warn(`optimized graph ${graphPath} failed to load (${message(err)}): rebuilding it`);
  }
  await model?.close();
  await removeCached(graphPath);
  return null;
}

/** Deletes graphs (and their fingerprints and records) cached beside `graphPath` under other keys: older pass versions or weights. */
async function removeOtherVersions(graphPath: string): Promise<void> {
  const dir = path.dirname(graphPath);
  const [, stem] = /^(.*)\.[0-9a-f]{16}\.onnx$/.exec(path.basename(graphPath)) ?? [];
  if (!stem) return;
  const mine = path.basename(graphPath);
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const m = /^(.*)\.[0-9a-f]{16}\.onnx(\.fingerprint\.json|\.[0-9a-f]{12}\.validated\.json)?$/.exec(f);
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

/** Checks the optimized graph `bytes` against the original's fingerprint, and caches both with the validation's record. */
async function produce(bytes: Uint8Array, report: PassReport[], graphPath: string, profile: QualityProfile, reference: Fingerprint, opts: LoadGraphOptions): Promise<LoadedGraph> {
  await writeFileAtomic(graphPath, bytes);
  let model: Model | null = null;
  try {
    model = await Model.load(graphPath, opts.sessionOptions);
    const agreement = agreementOf(reference, await runFingerprint(model));
    if (!accepts(profile, agreement)) throw new Error(`its outputs are too far from the original's: ${describe(profile, agreement)}`);
    const fingerprintText = JSON.stringify(reference);
    await writeFileAtomic(fingerprintPathFor(graphPath), fingerprintText);
    await recordValidation(graphPath, sourceDigest(bytes), fingerprintText, profile, agreement, opts);
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
  // a valid graph in any cache directory, read-only ones included
  const name = cacheFileName(opts.modelPath, digest.sha256, profile);
  for (const dir of cacheDirs(opts.modelPath, opts.cacheDir)) {
    const candidate = path.join(dir, name);
    if (!(await readable(candidate))) continue;
    const cached = await loadCached(candidate, profile, opts);
    if (cached) return { ...cached, graphPath: candidate, graph: 'optimized', profile };
  }
  let graphPath: string;
  try {
    graphPath = await cachePathFor(opts.modelPath, digest.sha256, opts.cacheDir, profile);
  } catch (err) {
    opts.warn(`${message(err)}: running the original graph`);
    return original();
  }
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

async function readable(file: string): Promise<boolean> {
  try {
    await access(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The cached optimized graph of `modelPath` when it and its fingerprint are on disk in any cache
 * directory (not validated: the engine does that at load), else null. Lets a setup step skip producing it.
 */
export async function cachedOptimizedGraph(modelPath: string, cacheDir?: string, profile: QualityProfile = DEFAULT_PROFILE): Promise<string | null> {
  const name = cacheFileName(modelPath, (await weightsDigest(modelPath, cacheDir)).sha256, profile);
  for (const dir of cacheDirs(modelPath, cacheDir)) {
    const graphPath = path.join(dir, name);
    if ((await readable(graphPath)) && (await readable(fingerprintPathFor(graphPath)))) return graphPath;
  }
  return null;
}
