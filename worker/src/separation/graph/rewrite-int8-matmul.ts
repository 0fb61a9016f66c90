// MatMul / Gemm with a constant weight → com.microsoft DynamicQuantizeMatMul (onnxruntime's
// contrib op): the weight is stored as int8 with one scale per output column, the activation is
// quantized to uint8 per tensor by the kernel at run time, and the product runs on the integer
// GEMM (VNNI where the CPU has it). This is approximate — it is the opt-in 'int8-transformer'
// profile, never the default.
//
// Weights use a 7-bit range (±63), as onnxruntime's quantizer does with reduce_range: on AVX2
// without VNNI the u8·s8 kernel adds pairs of products in int16 (vpmaddubsw), and 255·127·2
// overflows it while 255·63·2 does not, so the result is the same on every x86 CPU.
//
// A following Add of a constant [N] bias is folded into the op's bias input.
import { GraphIndex, attrFloat, attrInt, floatTensor, int8Tensor, makeNode, type ModelProto, type NodeProto } from './onnx-graph.ts';

export const MS_DOMAIN = 'com.microsoft';
/** Largest weight magnitude after quantization (7 bits: see above). */
export const WEIGHT_LEVELS = 63;

/** Symmetric per-column int8 quantization of a [K, N] weight: values and one scale per column. */
export function quantizeColumns(w: Float32Array, k: number, n: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(n);
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) scale[c] = Math.max(scale[c], Math.abs(w[r * n + c]));
  for (let c = 0; c < n; c++) scale[c] = scale[c] > 0 ? scale[c] / WEIGHT_LEVELS : 1;
  const q = new Int8Array(k * n);
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) q[r * n + c] = Math.round(w[r * n + c] / scale[c]);
  return { q, scale };
}

function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

interface Match {
  node: NodeProto;
  a: string;
  /** The weight as [K, N]. */
  w: Float32Array;
  k: number;
  n: number;
  bias?: { values: Float32Array; add?: NodeProto };
  output: string;
}

/** The constant [N] operand of an Add whose other input is `value`. */
function biasOf(index: GraphIndex, add: NodeProto | undefined, value: string, n: number): Float32Array | null {
  if (add?.opType !== 'Add') return null;
  const [x, y] = add.input ?? [];
  const other = x === value ? y : y === value ? x : undefined;
  if (!other) return null;
  const dims = index.constantDims(other);
  if (!dims || dims.length !== 1 || dims[0] !== n) return null;
  return index.constantFloats(other);
}

function match(index: GraphIndex, node: NodeProto): Match | null {
  const [a, b, c] = node.input ?? [];
  const dims = b ? index.constantDims(b) : undefined;
  const w0 = b ? index.constantFloats(b) : null;
  if (!a || !dims || dims.length !== 2 || !w0) return null;
  const output = node.output![0];
  if (node.opType === 'MatMul') {
    const [k, n] = dims;
    const add = index.soleConsumer(output);
    const bias = biasOf(index, add, output, n);
    return { node, a, w: w0, k, n, output: bias ? add!.output![0] : output, ...(bias ? { bias: { values: bias, add } } : {}) };
  }
  if (node.opType === 'Gemm') {
    if ((attrInt(node, 'transA') ?? 0) !== 0 || (attrFloat(node, 'alpha') ?? 1) !== 1 || (attrFloat(node, 'beta') ?? 1) !== 1) return null;
    const transB = (attrInt(node, 'transB') ?? 0) === 1;
    const [k, n] = transB ? [dims[1], dims[0]] : dims;
    let bias: Float32Array | undefined;
    if (c) {
      const cd = index.constantDims(c);
      const cv = index.constantFloats(c);
      if (!cd || cd.length !== 1 || cd[0] !== n || !cv) return null;
      bias = cv;
    }
    return { node, a, w: transB ? transpose(w0, n, k) : w0, k, n, output, ...(bias ? { bias: { values: bias } } : {}) };
  }
  return null;
}

/**
 * Rewrites every MatMul/Gemm with a constant 2-D weight that `where` selects. Returns how many;
 * adds the com.microsoft opset to `model` when any was rewritten.
 */
export function quantizeMatMuls(model: ModelProto, index: GraphIndex, where: (n: NodeProto) => boolean): number {
  index.rebuild(); // earlier passes may have left it stale
  const graph = index.graph;
  let count = 0;
  const dropped = new Set<NodeProto>();
  for (let i = 0; i < graph.node.length; i++) {
    const node = graph.node[i];
    if ((node.opType !== 'MatMul' && node.opType !== 'Gemm') || !where(node)) continue;
    const m = match(index, node);
    if (!m) continue;
    const base = node.name ?? `int8_${i}`;
    const { q, scale } = quantizeColumns(m.w, m.k, m.n);
    const qName = index.fresh(`${base}.weight_int8`);
    const sName = index.fresh(`${base}.weight_scale`);
    graph.initializer.push(int8Tensor(qName, [m.k, m.n], q), floatTensor(sName, [m.n], scale));
    const inputs = [m.a, qName, sName];
    if (m.bias) {
      const bName = index.fresh(`${base}.bias`);
      graph.initializer.push(floatTensor(bName, [m.n], m.bias.values));
      inputs.push('', bName);
    }
    graph.node[i] = makeNode('DynamicQuantizeMatMul', inputs, [m.output], `${base}_int8`, [], MS_DOMAIN);
    if (m.bias?.add) dropped.add(m.bias.add);
    count++;
  }
  if (count > 0) {
    graph.node = graph.node.filter((n) => !dropped.has(n));
    model.opsetImport ??= [];
    if (!model.opsetImport.some((o) => o.domain === MS_DOMAIN)) model.opsetImport.push({ domain: MS_DOMAIN, version: 1 });
    index.rebuild();
  }
  return count;
}
