// GroupNorm(1, C) as exported by PyTorch:
//   x → Reshape [0, 1, −1] → InstanceNormalization(scale 1, bias 0, ε) → Reshape(Shape(x)) → Mul γ[C,1] → Add β[C,1]
// → one LayerNormalization(axis = 1, ε) over [C, …] with γ/β expanded to the normalized shape
//   (Expand(γ, Shape(x)[1:]); ORT folds it into a constant at session creation, shapes being static).
// Normalizing all of C×T at once is what GroupNorm with one group does, so the result is the same
// up to float rounding.
//
// When the norm feeds a GLU (Split in two along C → a·σ(b)) whose product is scaled by a LayerScale
// Mul λ[C/2,1], λ is folded into the first half of γ/β: λ·(a·σ(b)) = (λ·a)·σ(b), and the Mul goes.
import {
  GraphIndex, attrFloat, attrInt, floatTensor, floatAttr, int64Values, intAttr, makeNode, type NodeProto,
} from './onnx-graph.ts';

export interface GroupNormOptions {
  /**
   * Which norms to rewrite (by the InstanceNormalization node). Default: all. Materialised γ/β
   * cost C×T floats each, so large normalized extents (HTDemucs' time branch) are better left.
   */
  where?: (instanceNorm: NodeProto) => boolean;
  /** Fold a following GLU's LayerScale Mul into the affine. Default true. */
  foldLayerScale?: boolean;
}

interface Match {
  pre: NodeProto;
  norm: NodeProto;
  post: NodeProto;
  mul: NodeProto;
  add: NodeProto;
  x: string;
  gamma: Float32Array;
  beta: Float32Array;
  epsilon: number;
  layerScale?: { glu: NodeProto; scaleMul: NodeProto; lambda: Float32Array };
}

function allEqual(a: Float32Array | null, v: number): boolean {
  return !!a && a.length > 0 && a.every((x) => x === v);
}

/** The per-channel constant of a Mul/Add whose other input is `value`: [C] or [C,1…]. */
function channelConst(index: GraphIndex, node: NodeProto, value: string): Float32Array | null {
  const [a, b] = node.input ?? [];
  const other = a === value ? b : b === value ? a : undefined;
  if (!other) return null;
  const dims = index.constantDims(other);
  if (!dims || dims.length < 1 || dims.slice(1).some((d) => d !== 1)) return null;
  return index.constantFloats(other);
}

function match(index: GraphIndex, norm: NodeProto, opts: GroupNormOptions): Match | null {
  if (norm.opType !== 'InstanceNormalization') return null;
  const [nIn, sName, bName] = norm.input ?? [];
  if (!allEqual(index.constantFloats(sName), 1) || !allEqual(index.constantFloats(bName), 0)) return null;
  if (index.constantFloats(sName)!.length !== 1) return null; // one group
  const pre = index.producer.get(nIn);
  if (pre?.opType !== 'Reshape' || index.soleConsumer(nIn) !== norm) return null;
  const preShape = index.constant(pre.input![1]);
  const shape = preShape ? int64Values(preShape) : null;
  if (!shape || shape.length !== 3 || shape[0] !== 0 || shape[1] !== 1 || shape[2] !== -1) return null;
  const x = pre.input![0];
  const post = index.soleConsumer(norm.output![0]);
  if (post?.opType !== 'Reshape') return null;
  // back to x's own shape: Reshape(·, Shape(x))
  const shapeOf = index.producer.get(post.input![1]);
  if (shapeOf?.opType !== 'Shape' || shapeOf.input![0] !== x || (shapeOf.attribute ?? []).length > 0) return null;
  const mul = index.soleConsumer(post.output![0]);
  if (mul?.opType !== 'Mul') return null;
  const gamma = channelConst(index, mul, post.output![0]);
  const add = gamma ? index.soleConsumer(mul.output![0]) : undefined;
  if (!gamma || add?.opType !== 'Add') return null;
  const beta = channelConst(index, add, mul.output![0]);
  if (!beta || beta.length !== gamma.length) return null;
  if (opts.where && !opts.where(norm)) return null;
  const m: Match = { pre, norm, post, mul, add, x, gamma, beta, epsilon: attrFloat(norm, 'epsilon') ?? 1e-5 };
  if (opts.foldLayerScale !== false) m.layerScale = matchLayerScale(index, add.output![0], gamma.length);
  return m;
}

/** Split(y, axis 1, two equal halves) → Mul(a, Sigmoid(b)) → Mul λ[C/2,1], each the sole consumer. */
function matchLayerScale(index: GraphIndex, y: string, channels: number): Match['layerScale'] {
  const split = index.soleConsumer(y);
  if (split?.opType !== 'Split' || (attrInt(split, 'axis') ?? 0) !== 1 || (split.output ?? []).length !== 2) return undefined;
  if (split.input![1]) {
    const sizes = index.constant(split.input![1]);
    const v = sizes ? int64Values(sizes) : null;
    if (!v || v[0] !== channels / 2 || v[1] !== channels / 2) return undefined;
  } else if (channels % 2 !== 0) return undefined;
  const [a, b] = split.output!;
  const sig = index.soleConsumer(b);
  const glu = index.soleConsumer(a);
  if (sig?.opType !== 'Sigmoid' || glu?.opType !== 'Mul' || index.soleConsumer(sig.output![0]) !== glu) return undefined;
  if (glu.input![0] !== a || glu.input![1] !== sig.output![0]) return undefined;
  const scaleMul = index.soleConsumer(glu.output![0]);
  if (scaleMul?.opType !== 'Mul') return undefined;
  const lambda = channelConst(index, scaleMul, glu.output![0]);
  if (!lambda || lambda.length !== channels / 2) return undefined;
  return { glu, scaleMul, lambda };
}

/** Rewrites every matching GroupNorm; returns how many norms and how many LayerScales were folded. */
export function rewriteGroupNorm(index: GraphIndex, opts: GroupNormOptions = {}): { norms: number; layerScales: number } {
  const matches: Match[] = [];
  for (const n of index.graph.node) {
    const m = match(index, n, opts);
    if (m) matches.push(m);
  }
  const drop = new Set<NodeProto>();
  const replace = new Map<NodeProto, NodeProto[]>();
  let layerScales = 0;
  for (const m of matches) {
    const C = m.gamma.length;
    const gamma = Float32Array.from(m.gamma);
    const beta = Float32Array.from(m.beta);
    if (m.layerScale) {
      for (let c = 0; c < C / 2; c++) {
        gamma[c] *= m.layerScale.lambda[c];
        beta[c] *= m.layerScale.lambda[c];
      }
      // the GLU product now is the scaled value: it takes over the LayerScale Mul's output
      m.layerScale.glu.output = [m.layerScale.scaleMul.output![0]];
      drop.add(m.layerScale.scaleMul);
      layerScales++;
    }
    const base = (m.norm.name ?? m.add.output![0]).replace(/\/InstanceNormalization$/, '');
    const g = index.fresh(`${base}/layernorm.gamma`);
    const b = index.fresh(`${base}/layernorm.beta`);
    index.graph.initializer.push(floatTensor(g, [C, 1], gamma), floatTensor(b, [C, 1], beta));
    const shape = index.fresh(`${base}/layernorm/normalized_shape`);
    const gFull = index.fresh(`${base}/layernorm/gamma_full`);
    const bFull = index.fresh(`${base}/layernorm/beta_full`);
    replace.set(m.pre, [
      makeNode('Shape', [m.x], [shape], index.fresh(`${base}/layernorm/Shape`), [intAttr('start', 1)]),
      makeNode('Expand', [g, shape], [gFull], index.fresh(`${base}/layernorm/Expand`)),
      makeNode('Expand', [b, shape], [bFull], index.fresh(`${base}/layernorm/Expand_1`)),
      makeNode('LayerNormalization', [m.x, gFull, bFull], [m.add.output![0]], index.fresh(`${base}/LayerNormalization`), [
        intAttr('axis', 1),
        floatAttr('epsilon', m.epsilon),
      ]),
    ]);
    for (const n of [m.norm, m.post, m.mul, m.add]) drop.add(n);
  }
  const out: NodeProto[] = [];
  for (const n of index.graph.node) {
    const r = replace.get(n);
    if (r) out.push(...r);
    else if (!drop.has(n)) out.push(n);
  }
  index.graph.node = out;
  index.rebuild();
  return { norms: matches.length, layerScales };
}
