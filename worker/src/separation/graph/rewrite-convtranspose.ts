// ConvTranspose (kernel K = P·S along one axis, stride S, no padding) → polyphase Conv.
//
// y[o, S·q + r] = b[o] + Σ_c Σ_{p<P} x[c, q − p] · W[c, o, r + S·p]   (q = 0 … L+P−2)
//
// is a Conv with P taps and P−1 zero padding on both sides producing S·C_out channels
// (channel o·S + r holds phase r of output channel o), followed by Reshape → Transpose → Reshape
// that interleaves the S phases. Same FLOPs, but ORT runs Conv on its NCHWc kernels instead of
// ConvTranspose's single-threaded col2im with thin GEMMs.
import {
  GraphIndex, attrInt, attrInts, attrString, dimsOf, floatTensor, floatValues, int64Tensor, intAttr, intsAttr, makeNode,
  type NodeProto,
} from './onnx-graph.ts';

interface Plan {
  node: NodeProto;
  cin: number;
  cout: number;
  stride: number;
  taps: number;
  /** 1 for [N, C, L]; 2 for [N, C, H, W] with the kernel along H (kernel [K, 1], stride [S, 1]). */
  rank: 1 | 2;
  weight: Float32Array;
  bias: Float32Array | null;
}

function plan(index: GraphIndex, node: NodeProto): Plan | null {
  if (node.opType !== 'ConvTranspose' || (node.domain ?? '') !== '') return null;
  const [, wName, bName] = node.input ?? [];
  const wT = wName ? index.constant(wName) : undefined;
  if (!wT) return null;
  const weight = floatValues(wT);
  if (!weight) return null;
  const dims = dimsOf(wT);
  const rank = dims.length === 3 ? 1 : dims.length === 4 && dims[3] === 1 ? 2 : 0;
  if (rank === 0) return null;
  const [cin, cout, k] = dims;
  const strides = attrInts(node, 'strides') ?? [];
  const stride = strides[0] ?? 1;
  if (rank === 2 && (strides[1] ?? 1) !== 1) return null;
  if ((attrInt(node, 'group') ?? 1) !== 1) return null;
  if ((attrInts(node, 'dilations') ?? []).some((d) => d !== 1)) return null;
  if ((attrInts(node, 'pads') ?? []).some((p) => p !== 0)) return null;
  if ((attrInts(node, 'output_padding') ?? []).some((p) => p !== 0)) return null;
  if (attrInts(node, 'output_shape')) return null;
  const autoPad = attrString(node, 'auto_pad');
  if (autoPad && autoPad !== 'NOTSET') return null;
  const ks = attrInts(node, 'kernel_shape');
  if (ks && (ks[0] !== k || (rank === 2 && ks[1] !== 1))) return null;
  if (stride < 2 || k % stride !== 0) return null;
  let bias: Float32Array | null = null;
  if (bName) {
    bias = index.constantFloats(bName);
    if (!bias || bias.length !== cout) return null;
  }
  return { node, cin, cout, stride, taps: k / stride, rank, weight, bias };
}

/** Conv weight [S·C_out, C_in, P (, 1)] and bias [S·C_out] from the ConvTranspose's. */
export function polyphaseWeights(p: Pick<Plan, 'cin' | 'cout' | 'stride' | 'taps' | 'weight' | 'bias'>): { weight: Float32Array; bias: Float32Array } {
  const { cin, cout, stride: S, taps: P, weight: W } = p;
  const K = S * P;
  const weight = new Float32Array(S * cout * cin * P);
  for (let o = 0; o < cout; o++) {
    for (let r = 0; r < S; r++) {
      const oc = o * S + r;
      for (let c = 0; c < cin; c++) {
        for (let t = 0; t < P; t++) {
          // tap t reads x[q − (P−1) + t], i.e. p = P−1−t
          weight[(oc * cin + c) * P + t] = W[(c * cout + o) * K + r + S * (P - 1 - t)];
        }
      }
    }
  }
  const bias = new Float32Array(S * cout);
  if (p.bias) for (let o = 0; o < cout; o++) for (let r = 0; r < S; r++) bias[o * S + r] = p.bias[o];
  return { weight, bias };
}

function rewrite(index: GraphIndex, p: Plan): NodeProto[] {
  const base = (p.node.name || p.node.output![0]).replace(/\/?ConvTranspose$/, '');
  const x = p.node.input![0];
  const y = p.node.output![0];
  const { weight, bias } = polyphaseWeights(p);
  const S = p.stride, P = p.taps, C = p.cout;
  const wName = index.fresh(`${base}/polyphase.weight`);
  const bName = index.fresh(`${base}/polyphase.bias`);
  const wDims = p.rank === 1 ? [S * C, p.cin, P] : [S * C, p.cin, P, 1];
  index.graph.initializer.push(floatTensor(wName, wDims, weight), floatTensor(bName, [S * C], bias));
  const z = index.fresh(`${base}/polyphase/Conv_output_0`);
  const conv = makeNode('Conv', [x, wName, bName], [z], index.fresh(`${base}/polyphase/Conv`), [
    intsAttr('kernel_shape', p.rank === 1 ? [P] : [P, 1]),
    intsAttr('pads', p.rank === 1 ? [P - 1, P - 1] : [P - 1, 0, P - 1, 0]),
    intsAttr('strides', p.rank === 1 ? [1] : [1, 1]),
    intsAttr('dilations', p.rank === 1 ? [1] : [1, 1]),
    intAttr('group', 1),
  ]);
  const split = index.fresh(`${base}/polyphase/phases`);
  const inter = index.fresh(`${base}/polyphase/interleaved`);
  if (p.rank === 1) {
    // [N, S·C, L'] → [N, C, S, L'] → [N, C, L', S] → [N, C, S·L']
    const s1 = index.fresh(`${base}/polyphase/shape_phases`);
    const s2 = index.fresh(`${base}/polyphase/shape_out`);
    index.graph.initializer.push(int64Tensor(s1, [0, C, S, -1]), int64Tensor(s2, [0, C, -1]));
    return [
      conv,
      makeNode('Reshape', [z, s1], [split], index.fresh(`${base}/polyphase/Reshape`)),
      makeNode('Transpose', [split], [inter], index.fresh(`${base}/polyphase/Transpose`), [intsAttr('perm', [0, 1, 3, 2])]),
      makeNode('Reshape', [inter, s2], [y], index.fresh(`${base}/polyphase/Reshape_1`)),
    ];
  }
  // [N, S·C, H', W] → [N, C, S, H', W] → [N, C, H', S, W] → [N, C, S·H', W]; W from Shape (folded by ORT).
  const w = index.fresh(`${base}/polyphase/width`);
  const c1 = index.fresh(`${base}/polyphase/shape_phases_head`);
  const c2 = index.fresh(`${base}/polyphase/shape_out_head`);
  const s1 = index.fresh(`${base}/polyphase/shape_phases`);
  const s2 = index.fresh(`${base}/polyphase/shape_out`);
  index.graph.initializer.push(int64Tensor(c1, [0, C, S, -1]), int64Tensor(c2, [0, C, -1]));
  return [
    conv,
    makeNode('Shape', [z], [w], index.fresh(`${base}/polyphase/Shape`), [intAttr('start', 3)]),
    makeNode('Concat', [c1, w], [s1], index.fresh(`${base}/polyphase/Concat`), [intAttr('axis', 0)]),
    makeNode('Concat', [c2, w], [s2], index.fresh(`${base}/polyphase/Concat_1`), [intAttr('axis', 0)]),
    makeNode('Reshape', [z, s1], [split], index.fresh(`${base}/polyphase/Reshape`)),
    makeNode('Transpose', [split], [inter], index.fresh(`${base}/polyphase/Transpose`), [intsAttr('perm', [0, 1, 3, 2, 4])]),
    makeNode('Reshape', [inter, s2], [y], index.fresh(`${base}/polyphase/Reshape_1`)),
  ];
}

/** Rewrites every eligible ConvTranspose in place; returns how many. Needs opset ≥ 15 (Shape start). */
export function rewriteConvTranspose(index: GraphIndex): number {
  const out: NodeProto[] = [];
  let count = 0;
  for (const node of index.graph.node) {
    const p = plan(index, node);
    if (!p) {
      out.push(node);
      continue;
    }
    out.push(...rewrite(index, p));
    count++;
  }
  index.graph.node = out;
  index.rebuild();
  return count;
}
