// The record of a cached graph's validation: written once, when a fingerprint run showed that the
// graph's bytes reproduce the original's outputs on this runtime; a later load that finds the same
// graph bytes, the same reference fingerprint and the same runtime trusts it instead of running a
// segment again. Anything else (another onnxruntime, CPU kernels or session optimization level, a
// changed file) runs the fingerprint as before.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { QualityProfile } from '@msaas/common';
import type { SessionOptions } from '../model.ts';

/** CPU features that select onnxruntime's kernels (and so the last bits of a graph's outputs). */
const KERNEL_FLAGS = [
  'sse4_1', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_tile', 'amx_int8', 'amx_bf16',
  'asimd', 'asimddp', 'i8mm', 'bf16', 'sve',
];

function cpuKernelFlags(): string {
  let info = '';
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return 'unknown-cpu';
  }
  const line = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(info)?.[1] ?? '';
  const have = new Set(line.split(/\s+/));
  return KERNEL_FLAGS.filter((f) => have.has(f)).join(',');
}

function onnxRuntimeVersion(): string {
  try {
    return (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

let runtimeOnce: string | undefined;
const processRuntime = (): string => (runtimeOnce ??= `onnxruntime-node ${onnxRuntimeVersion()} ${process.platform}-${process.arch} [${cpuKernelFlags()}]`);

/** What a validation holds for: the runtime, the CPU's kernel features and the session's optimization level. */
export const runtimeKeyOf = (sessionOptions: SessionOptions): string => `${processRuntime()} opt=${sessionOptions.graphOptimizationLevel ?? 'default'}`;

export interface ValidationRecord {
  /** The graph file's name (its directory may differ: the record may sit in a writable fallback). */
  graph: string;
  graphSha256: string;
  /** sha-256 of the reference fingerprint file the graph was compared with. */
  fingerprintSha256: string;
  runtime: string;
  profile: QualityProfile;
  /** Max abs difference and SNR (dB; null = no error) measured against the reference. */
  distance: number;
  snrDb: number | null;
  validatedAt: string;
}

/** `<graph>.<runtime hash>.validated.json`: one per runtime a graph was validated on. */
export const validationNameFor = (graphPath: string, runtime: string): string =>
  `${path.basename(graphPath)}.${createHash('sha256').update(runtime).digest('hex').slice(0, 12)}.validated.json`;

export const textSha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function isRecord(v: unknown): v is ValidationRecord {
  const r = v as ValidationRecord;
  return (
    !!r && typeof r.graph === 'string' && typeof r.graphSha256 === 'string' && typeof r.fingerprintSha256 === 'string' &&
    typeof r.runtime === 'string' && typeof r.profile === 'string' && typeof r.distance === 'number' && (r.snrDb === null || typeof r.snrDb === 'number')
  );
}

/** The records for `graphPath` on `runtime` found in `dirs` (beside the graph first). */
export async function readValidations(graphPath: string, runtime: string, dirs: string[]): Promise<ValidationRecord[]> {
  const name = validationNameFor(graphPath, runtime);
  const found: ValidationRecord[] = [];
  for (const dir of [path.dirname(graphPath), ...dirs.filter((d) => path.resolve(d) !== path.resolve(path.dirname(graphPath)))]) {
    try {
      const v: unknown = JSON.parse(await readFile(path.join(dir, name), 'utf8'));
      if (isRecord(v) && v.runtime === runtime && v.graph === path.basename(graphPath)) found.push(v);
    } catch {
      // none there
    }
  }
  return found;
}
