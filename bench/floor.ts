/**
 * The hardware limit the engine is judged against (issue 14): what one segment of the model costs
 * in FLOPs, how fast this machine multiplies matrices through onnxruntime, and so how fast a
 * segment could possibly run. Used by bench/separate.ts; the profile parsing is pure.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** One node's kernel event in an ORT profile (Chrome trace format). */
interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: {
    op_name?: string;
    input_type_shape?: Array<Record<string, number[]>>;
    output_type_shape?: Array<Record<string, number[]>>;
  };
}

const prod = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);
const shapeOf = (entry: Record<string, number[]> | undefined): number[] | null => (entry ? (Object.values(entry)[0] ?? null) : null);

/**
 * The inner dimension K of a matrix product Y = A·B from element counts, whatever the operands'
 * layout (FusedMatMul reads transposed views): an operand that is not broadcast holds
 * batch × M × K (A) or batch × K × N (B) elements, so the larger of the two estimates is K.
 */
function innerDim(a: readonly number[], b: readonly number[] | null, y: readonly number[]): number {
  const m = y[y.length - 2] ?? 1;
  const n = y[y.length - 1] ?? 1;
  const fromA = (prod(a) * n) / prod(y);
  const fromB = b ? (prod(b) * m) / prod(y) : 0;
  return Math.max(fromA, fromB);
}

/**
 * A ConvTranspose's kernel from its shapes when the profile leaves the (prepacked) weight out:
 * per spatial axis, stride s = ⌊out/in⌋ and kernel k = out − (in − 1)·s (no padding, group 1 —
 * HTDemucs's decoders).
 */
function transposedKernel(x: readonly number[], y: readonly number[]): number[] {
  return x.slice(2).map((len, i) => {
    const out = y[i + 2]!;
    const stride = Math.max(1, Math.floor(out / len));
    return out - (len - 1) * stride;
  });
}

/**
 * FLOPs (2 × multiply-adds) of one node from its input/output shapes; 0 for ops that are not
 * convolutions or matrix products (those are memory-bound and counted by time only).
 */
export function nodeFlops(op: string, inputs: Array<number[] | null>, outputs: Array<number[] | null>): number {
  const [x, w] = inputs;
  const y = outputs[0];
  if (!x || !y) return 0;
  switch (op) {
    case 'Conv':
    case 'FusedConv':
      // every output element is a dot product over the kernel window of its group's channels
      return w ? 2 * prod(y) * prod(w.slice(1)) : 0;
    case 'ConvTranspose':
      // every input element is scattered into (C_out / group) × kernel outputs
      return 2 * prod(x) * (w && w.length === x.length ? prod(w.slice(1)) : y[1]! * prod(transposedKernel(x, y)));
    case 'MatMul':
    case 'FusedMatMul':
    case 'Gemm':
    case 'FusedGemm':
      return 2 * prod(y) * innerDim(x, w && w.length >= 2 && op !== 'Gemm' && op !== 'FusedGemm' ? w : null, y);
    default:
      return 0;
  }
}

export interface OpGroup {
  op: string;
  nodes: number;
  msPerRun: number;
  gflop: number;
}

export interface ProfileSummary {
  runs: number;
  gflopPerRun: number;
  kernelMsPerRun: number;
  groups: OpGroup[];
}

/**
 * Sums an ORT profile's node events by op type over the given runs (session.run events split the
 * trace into runs; the first `skipRuns` — warm-up — are left out).
 */
export function summarizeProfile(events: ProfileEvent[], skipRuns: number): ProfileSummary {
  const groups = new Map<string, { nodes: Set<string>; us: number; flops: number }>();
  let run = -1;
  let counted = 0;
  // A run's model_run event starts before its node events: sorted by start, it opens the run.
  const ordered = [...events].sort((a, b) => a.ts - b.ts);
  for (const e of ordered) {
    if (e.cat === 'Session' && e.name === 'model_run') {
      run++;
      if (run >= skipRuns) counted++;
      continue;
    }
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args?.op_name) continue;
    if (run < skipRuns) continue;
    const op = e.args.op_name;
    const g = groups.get(op) ?? { nodes: new Set<string>(), us: 0, flops: 0 };
    g.nodes.add(e.name);
    g.us += e.dur;
    g.flops += nodeFlops(op, (e.args.input_type_shape ?? []).map(shapeOf), (e.args.output_type_shape ?? []).map(shapeOf));
    groups.set(op, g);
  }
  const runs = Math.max(1, counted);
  const list = [...groups.entries()].map(([op, g]) => ({ op, nodes: g.nodes.size, msPerRun: g.us / 1000 / runs, gflop: g.flops / 1e9 / runs }));
  list.sort((a, b) => b.msPerRun - a.msPerRun);
  return {
    runs,
    gflopPerRun: list.reduce((s, g) => s + g.gflop, 0),
    kernelMsPerRun: list.reduce((s, g) => s + g.msPerRun, 0),
    groups: list,
  };
}

/** Profiles `runs` runs of one zero segment (after `warmup` unprofiled-in-summary runs). */
export async function profileModel(modelPath: string, options: ort.InferenceSession.SessionOptions, warmup: number, runs: number): Promise<ProfileSummary> {
  const prefix = path.join(tmpdir(), `msaas-profile-${process.pid}`);
  const session = await ort.InferenceSession.create(modelPath, { ...options, enableProfiling: true, profileFilePrefix: prefix });
  const feeds: Record<string, ort.Tensor> = {};
  for (const m of session.inputMetadata) {
    if (!m.isTensor) throw new Error(`input ${m.name} is not a tensor`);
    const dims = m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    feeds[m.name] = new ort.Tensor('float32', new Float32Array(prod(dims)), dims);
  }
  for (let i = 0; i < warmup + runs; i++) await session.run(feeds);
  session.endProfiling();
  await session.release();
  // onnxruntime-node does not return the file's name: it is `<prefix>_<timestamp>.json`.
  const stem = `${path.basename(prefix)}_`;
  const name = readdirSync(tmpdir()).find((f) => f.startsWith(stem) && f.endsWith('.json'));
  if (!name) throw new Error(`onnxruntime wrote no profile ${prefix}_*.json`);
  const profileFile = path.join(tmpdir(), name);
  const events = JSON.parse(readFileSync(profileFile, 'utf8')) as ProfileEvent[];
  rmSync(profileFile, { force: true });
  return summarizeProfile(events, warmup);
}

/** A product shape M×K · K×N. */
export interface GemmShape {
  m: number;
  k: number;
  n: number;
}

/** The model's own largest products (transformer in/out projections and feed-forward on 2688 tokens). */
export const MODEL_GEMM_SHAPES: readonly GemmShape[] = [
  { m: 2688, k: 512, n: 1536 },
  { m: 2688, k: 512, n: 2048 },
  { m: 2688, k: 2048, n: 512 },
];

const uniform = (count: number, salt: number): Float32Array => {
  const a = new Float32Array(count);
  for (let i = 0; i < count; i++) a[i] = (((i + salt) * 2654435761) % 1000) / 1000 - 0.5;
  return a;
};

/**
 * A one-node ONNX model Y = A·W, A a float32 [m, k] input and W a constant [k, n] initializer —
 * as in the model, where ORT prepacks the weights once — built with onnx-proto.
 */
export function matMulModel({ m, k, n }: GemmShape): Uint8Array {
  const tensorType = (name: string, dims: number[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
    });
  const w = uniform(k * n, 7);
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'msaas-bench',
    graph: {
      name: 'matmul',
      node: [{ opType: 'MatMul', input: ['A', 'W'], output: ['Y'], name: 'mm' }],
      initializer: [{ name: 'W', dims: [k, n], dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(w.buffer) }],
      input: [tensorType('A', [m, k])],
      output: [tensorType('Y', [m, n])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface GemmRate {
  shape: GemmShape;
  threads: number;
  medianGflops: number;
  bestGflops: number;
}

/** onnxruntime's fp32 MatMul rate for one shape (`reps` timed runs after two untimed). */
export async function measureGemmShape(threads: number, shape: GemmShape, reps = 15): Promise<GemmRate> {
  const session = await ort.InferenceSession.create(matMulModel(shape), { intraOpNumThreads: threads, graphOptimizationLevel: 'all' });
  const feeds = { A: new ort.Tensor('float32', uniform(shape.m * shape.k, 3), [shape.m, shape.k]) };
  await session.run(feeds);
  await session.run(feeds);
  const flop = 2 * shape.m * shape.k * shape.n;
  const rates: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await session.run(feeds);
    rates.push(flop / ((performance.now() - t) / 1000) / 1e9);
  }
  await session.release();
  rates.sort((x, y) => x - y);
  return { shape, threads, medianGflops: rates[Math.floor(rates.length / 2)]!, bestGflops: rates[rates.length - 1]! };
}

/** This machine's GEMM rate: the best median over the model's own product shapes. */
export async function measureGemmRate(threads: number, shapes: readonly GemmShape[] = MODEL_GEMM_SHAPES): Promise<GemmRate> {
  let best: GemmRate | null = null;
  for (const shape of shapes) {
    const r = await measureGemmShape(threads, shape);
    if (!best || r.medianGflops > best.medianGflops) best = r;
  }
  return best!;
}

export interface Floor {
  gflopPerSegment: number;
  gemm: GemmRate;
  floorSec: number;
  steadySec: number;
  ratio: number;
}

export function floorOf(gflopPerSegment: number, gemm: GemmRate, steadySec: number): Floor {
  const floorSec = gflopPerSegment / gemm.medianGflops;
  return { gflopPerSegment, gemm, floorSec, steadySec, ratio: steadySec / floorSec };
}

/** Markdown table of the profile's op groups (top `limit` by time). */
export function profileTable(p: ProfileSummary, limit = 12): string {
  const lines = ['| op type | nodes | ms/run | share | GFLOP/run | GFLOP/s |', '|---|---|---|---|---|---|'];
  for (const g of p.groups.slice(0, limit)) {
    const rate = g.gflop > 0 ? (g.gflop / (g.msPerRun / 1000)).toFixed(0) : 'memory-bound';
    lines.push(`| ${g.op} | ${g.nodes} | ${g.msPerRun.toFixed(0)} | ${((100 * g.msPerRun) / p.kernelMsPerRun).toFixed(1)} % | ${g.gflop.toFixed(1)} | ${rate} |`);
  }
  const rest = p.groups.slice(limit);
  if (rest.length) {
    const ms = rest.reduce((s, g) => s + g.msPerRun, 0);
    lines.push(`| ${rest.length} other op types | ${rest.reduce((s, g) => s + g.nodes, 0)} | ${ms.toFixed(0)} | ${((100 * ms) / p.kernelMsPerRun).toFixed(1)} % | | |`);
  }
  return lines.join('\n');
}
