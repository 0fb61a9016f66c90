import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, symlinkSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  GraphIndex, buildModel, encodeModel, floatTensor, floatValueInfo, graphOf, int64Tensor, intAttr, intsAttr, makeNode, floatAttr, pruneDead,
  type NodeProto, type TensorProto,
} from '../src/separation/graph/onnx-graph.ts';
import { rewriteConvTranspose } from '../src/separation/graph/rewrite-convtranspose.ts';
import { rewriteGroupNorm } from '../src/separation/graph/rewrite-groupnorm.ts';
import { loadModelGraph, fingerprintPathFor, GRAPH_TOLERANCE, weightsDigest } from '../src/separation/graph/optimized-model.ts';
import { sourceDigest } from '../src/separation/graph/optimize.ts';
import { ENGINE_SESSION_DEFAULTS } from '../src/separation/engine.ts';
import { Model, SEGMENT, FREQ_BINS, FRAMES, defaultModelPath } from '../src/separation/model.ts';
import { Spectrogram } from '../src/separation/stft.ts';
import { synthesizeSong } from '../fixtures/synth.ts';
import { mulberry32 } from '../src/separation/random.ts';

/** Uniform in [-0.5, 0.5). */
function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() - 0.5;
}
const randArray = (n: number, rand: () => number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => rand() * scale);

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Runs a one-input one-output graph before and after `rewrite`; returns both outputs and the rewritten op types. */
async function runBoth(
  nodes: NodeProto[], inits: TensorProto[], inDims: number[], outName: string, rewrite: (index: GraphIndex) => number,
): Promise<{ before: Float32Array; after: Float32Array; count: number; ops: string[] }> {
  const make = () => buildModel({
    name: 'tiny', node: structuredClone(nodes), initializer: structuredClone(inits),
    input: [floatValueInfo('x', inDims)], output: [{ name: outName }],
  });
  const x = randArray(inDims.reduce((a, b) => a * b, 1), rng(7));
  const run = async (bytes: Uint8Array): Promise<Float32Array> => {
    const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all' });
    const out = await s.run({ x: new ort.Tensor('float32', x, inDims) });
    await s.release();
    return out[outName].data as Float32Array;
  };
  const before = await run(encodeModel(make()));
  const model = make();
  const index = new GraphIndex(graphOf(model));
  const count = rewrite(index);
  pruneDead(graphOf(model));
  return { before, after: await run(encodeModel(model)), count, ops: graphOf(model).node.map((n) => n.opType ?? '') };
}

describe('ConvTranspose → polyphase Conv', () => {
  it('computes the same as a 1-D ConvTranspose (kernel 8, stride 4) with bias', async () => {
    const rand = rng(1);
    const [cin, cout, len] = [5, 3, 17];
    const nodes = [makeNode('ConvTranspose', ['x', 'w', 'b'], ['y'], 'ct', [intsAttr('kernel_shape', [8]), intsAttr('strides', [4])])];
    const inits = [floatTensor('w', [cin, cout, 8], randArray(cin * cout * 8, rand)), floatTensor('b', [cout], randArray(cout, rand))];
    const r = await runBoth(nodes, inits, [2, cin, len], 'y', rewriteConvTranspose);
    expect(r.count).toBe(1);
    expect(r.ops).not.toContain('ConvTranspose');
    expect(r.before.length).toBe(2 * cout * (4 * (len - 1) + 8));
    expect(maxAbsDiff(r.before, r.after)).toBeLessThan(1e-5);
  });

  it('computes the same as a 2-D ConvTranspose along the first axis (kernel [8,1], stride [4,1]), and other strides', async () => {
    const rand = rng(2);
    const [cin, cout, h, w] = [4, 6, 9, 5];
    const nodes = [
      makeNode('ConvTranspose', ['x', 'w', 'b'], ['y'], 'ct', [intsAttr('kernel_shape', [8, 1]), intsAttr('strides', [4, 1])]),
      makeNode('ConvTranspose', ['y', 'w2'], ['z'], 'ct2', [intsAttr('kernel_shape', [6, 1]), intsAttr('strides', [2, 1])]),
    ];
    const inits = [
      floatTensor('w', [cin, cout, 8, 1], randArray(cin * cout * 8, rand)),
      floatTensor('b', [cout], randArray(cout, rand)),
      floatTensor('w2', [cout, 2, 6, 1], randArray(cout * 2 * 6, rand)),
    ];
    const r = await runBoth(nodes, inits, [1, cin, h, w], 'z', rewriteConvTranspose);
    expect(r.count).toBe(2);
    expect(r.ops).not.toContain('ConvTranspose');
    expect(maxAbsDiff(r.before, r.after)).toBeLessThan(1e-5);
  });

  it('leaves a ConvTranspose it cannot express (padding, kernel not a multiple of the stride) alone', async () => {
    const rand = rng(3);
    const nodes = [
      makeNode('ConvTranspose', ['x', 'w'], ['y'], 'padded', [intsAttr('kernel_shape', [8]), intsAttr('strides', [4]), intsAttr('pads', [2, 2])]),
      makeNode('ConvTranspose', ['y', 'w3'], ['z'], 'odd', [intsAttr('kernel_shape', [5]), intsAttr('strides', [2])]),
    ];
    const inits = [floatTensor('w', [2, 2, 8], randArray(32, rand)), floatTensor('w3', [2, 2, 5], randArray(20, rand))];
    const r = await runBoth(nodes, inits, [1, 2, 6], 'z', rewriteConvTranspose);
    expect(r.count).toBe(0);
    expect(maxAbsDiff(r.before, r.after)).toBe(0);
  });
});

describe('GroupNorm → LayerNormalization', () => {
  /** PyTorch's GroupNorm(1, C) export, then a GLU and a LayerScale, as in HTDemucs' DConv. */
  function dconvTail(c: number, rand: () => number): { nodes: NodeProto[]; inits: TensorProto[] } {
    const nodes = [
      makeNode('Reshape', ['x', 'grp'], ['r'], '/encoder.0/dconv/layers.0/layers.0.4/Reshape'),
      makeNode('InstanceNormalization', ['r', 'one', 'zero'], ['n'], '/encoder.0/dconv/layers.0/layers.0.4/InstanceNormalization', [floatAttr('epsilon', 1e-5)]),
      makeNode('Shape', ['x'], ['xs'], 'shape'),
      makeNode('Reshape', ['n', 'xs'], ['nb'], 'back'),
      makeNode('Mul', ['nb', 'gamma'], ['m'], 'mul'),
      makeNode('Add', ['m', 'beta'], ['a'], 'add'),
      makeNode('Split', ['a'], ['s0', 's1'], 'split', [intAttr('axis', 1)]),
      makeNode('Sigmoid', ['s1'], ['sg'], 'sigmoid'),
      makeNode('Mul', ['s0', 'sg'], ['glu'], 'glu'),
      makeNode('Mul', ['glu', 'lambda'], ['y'], 'layerscale'),
    ];
    const inits = [
      int64Tensor('grp', [0, 1, -1]),
      floatTensor('one', [1], Float32Array.of(1)),
      floatTensor('zero', [1], Float32Array.of(0)),
      floatTensor('gamma', [c, 1], randArray(c, rand, 2)),
      floatTensor('beta', [c, 1], randArray(c, rand)),
      floatTensor('lambda', [c / 2, 1], randArray(c / 2, rand, 0.2)),
    ];
    return { nodes, inits };
  }

  it('replaces Reshape→InstanceNorm→Reshape→Mul→Add by one LayerNormalization and folds the LayerScale Mul, same outputs', async () => {
    const { nodes, inits } = dconvTail(8, rng(4));
    let folded = 0;
    const r = await runBoth(nodes, inits, [3, 8, 50], 'y', (index) => {
      const res = rewriteGroupNorm(index);
      folded = res.layerScales;
      return res.norms;
    });
    expect(r.count).toBe(1);
    expect(folded).toBe(1);
    expect(r.ops).toContain('LayerNormalization');
    expect(r.ops).not.toContain('InstanceNormalization');
    expect(r.ops.filter((o) => o === 'Mul')).toHaveLength(1); // only the GLU product is left
    expect(maxAbsDiff(r.before, r.after)).toBeLessThan(1e-5);
  });

  it('leaves a norm with a non-trivial InstanceNorm affine, or one the filter excludes, alone', async () => {
    const { nodes, inits } = dconvTail(4, rng(5));
    const scaled = inits.map((t) => (t.name === 'one' ? floatTensor('one', [1], Float32Array.of(2)) : t));
    const r1 = await runBoth(nodes, scaled, [2, 4, 20], 'y', (index) => rewriteGroupNorm(index).norms);
    expect(r1.count).toBe(0);
    const r2 = await runBoth(nodes, inits, [2, 4, 20], 'y', (index) => rewriteGroupNorm(index, { where: () => false }).norms);
    expect(r2.count).toBe(0);
    expect(maxAbsDiff(r2.before, r2.after)).toBe(0);
  });
});

describe('the weights digest behind the cache key', () => {
  it('is read from its memo while the file is unchanged, and computed again from the bytes once the file is rewritten', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'msaas-digest-'));
    try {
      const file = path.join(dir, 'w.onnx');
      writeFileSync(file, Buffer.from('weights one'));
      const first = await weightsDigest(file);
      expect(first.sha256).toBe(sourceDigest(Buffer.from('weights one')));
      expect(first.source).toBeDefined(); // read and hashed
      expect(existsSync(path.join(dir, 'w.onnx.sha256.json'))).toBe(true);
      const second = await weightsDigest(file);
      expect(second).toEqual({ sha256: first.sha256 }); // from the memo, not read
      writeFileSync(file, Buffer.from('weights two')); // same size, new content
      const third = await weightsDigest(file);
      expect(third.source).toBeDefined();
      expect(third.sha256).toBe(sourceDigest(Buffer.from('weights two')));
      writeFileSync(path.join(dir, 'w.onnx.sha256.json'), '{"identity":"forged","sha256":"00"}');
      expect((await weightsDigest(file)).sha256).toBe(third.sha256);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the optimized HTDemucs graph', () => {
  let dir: string;
  let modelPath: string;
  const sessionOptions = { ...ENGINE_SESSION_DEFAULTS, intraOpNumThreads: 2, enableCpuMemArena: false };
  const warnings: string[] = [];
  const warn = (m: string): void => void warnings.push(m);
  let mix: Float32Array;
  let spec: Float32Array;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'msaas-graph-'));
    // a link in a fresh directory: the cache goes next to it, not next to the shared weights
    modelPath = path.join(dir, 'htdemucs.onnx');
    symlinkSync(defaultModelPath(), modelPath);
    const song = synthesizeSong({ seconds: 9, seed: 3 });
    mix = new Float32Array(2 * SEGMENT);
    mix.set(song[0].subarray(0, SEGMENT), 0);
    mix.set(song[1].subarray(0, SEGMENT), SEGMENT);
    spec = new Float32Array(4 * FREQ_BINS * FRAMES);
    new Spectrogram(SEGMENT).forward(mix.subarray(0, SEGMENT), mix.subarray(SEGMENT), spec);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is produced once, cached beside the weights, and matches the original within 1e-4 on a segment of music', async () => {
    const original = await Model.load(modelPath, sessionOptions);
    const ref = await original.run(mix.slice(), spec.slice());
    await original.close();

    const stale = path.join(dir, 'htdemucs.0123456789abcdef.onnx'); // an older pass version's graph
    writeFileSync(stale, 'old');
    writeFileSync(fingerprintPathFor(stale), '{}');
    const loaded = await loadModelGraph({ modelPath, graph: 'optimized', sessionOptions, warn });
    try {
      expect(existsSync(stale) || existsSync(fingerprintPathFor(stale))).toBe(false);
      expect(warnings).toEqual([]);
      expect(loaded.graph).toBe('optimized');
      expect(path.dirname(loaded.graphPath)).toBe(dir);
      expect(path.basename(loaded.graphPath)).toMatch(/^htdemucs\.[0-9a-f]{16}\.onnx$/);
      expect(existsSync(fingerprintPathFor(loaded.graphPath))).toBe(true);
      const passes = Object.fromEntries(loaded.produced!.report.map((p) => [p.pass, p.rewritten]));
      expect(passes['convtranspose-polyphase']).toBe(8);
      expect(passes['groupnorm-layernorm']).toBeGreaterThan(0);
      const out = await loaded.model.run(mix.slice(), spec.slice());
      const dFreq = maxAbsDiff(ref.freq, out.freq);
      const dTime = maxAbsDiff(ref.time, out.time);
      console.log(`optimized vs original on a music segment: max abs ${dFreq.toExponential(2)} (freq), ${dTime.toExponential(2)} (time)`);
      expect(dFreq).toBeLessThanOrEqual(GRAPH_TOLERANCE);
      expect(dTime).toBeLessThanOrEqual(GRAPH_TOLERANCE);
    } finally {
      await loaded.model.close();
    }
  }, 300_000);

  it('reuses the cache at the next load, and rebuilds it when it no longer reproduces the fingerprint', async () => {
    const again = await loadModelGraph({ modelPath, graph: 'optimized', sessionOptions, warn });
    await again.model.close();
    expect(again.graph).toBe('optimized');
    expect(again.produced).toBeUndefined();
    expect(warnings).toEqual([]);

    // a stale record (as if the cached graph computed something else): detected, rebuilt
    const fpFile = fingerprintPathFor(again.graphPath);
    const fp = JSON.parse(readFileSync(fpFile, 'utf8')) as { freq: number[] };
    fp.freq[10] += 1e-2;
    writeFileSync(fpFile, JSON.stringify(fp));
    const rebuilt = await loadModelGraph({ modelPath, graph: 'optimized', sessionOptions, warn });
    await rebuilt.model.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/differs from the original's fingerprint.*rebuilding/);
    expect(rebuilt.graph).toBe('optimized');
    expect(rebuilt.produced).toBeDefined();
    expect(rebuilt.graphPath).toBe(again.graphPath);
  }, 300_000);
});
