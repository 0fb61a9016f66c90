import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, symlinkSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  GraphIndex, buildModel, encodeModel, floatTensor, floatValueInfo, graphOf, int64Tensor, intAttr, intsAttr, makeNode, floatAttr, pruneDead,
  type ModelProto, type NodeProto, type TensorProto,
} from '../src/separation/graph/onnx-graph.ts';
import { rewriteConvTranspose } from '../src/separation/graph/rewrite-convtranspose.ts';
import { rewriteGroupNorm } from '../src/separation/graph/rewrite-groupnorm.ts';
import { loadModelGraph, fingerprintPathFor, GRAPH_TOLERANCE, INT8_MIN_SNR_DB, weightsDigest } from '../src/separation/graph/optimized-model.ts';
import { quantizeColumns, quantizeMatMuls, WEIGHT_LEVELS } from '../src/separation/graph/rewrite-int8-matmul.ts';
import { sourceDigest } from '../src/separation/graph/optimize.ts';
import { createEngine, ENGINE_SESSION_DEFAULTS } from '../src/separation/engine.ts';
import { Model, SEGMENT, FREQ_BINS, FRAMES, defaultModelPath } from '../src/separation/model.ts';
import { Spectrogram } from '../src/separation/stft.ts';
import { synthesizeSong } from '../fixtures/synth.ts';
import { mulberry32 } from '../src/separation/random.ts';
import { sdr } from '../fixtures/sdr.ts';

/** Uniform in [-0.5, 0.5). */
function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() - 0.5;
}
const randArray = (n: number, rand: () => number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => rand() * scale);

/** Signal-to-error ratio of `x` against the reference `ref`, in dB (the shared SDR fixture on one channel). */
function snrDb(ref: Float32Array, x: Float32Array): number {
  expect(ref.length).toBe(x.length);
  return sdr([ref], [x]).db;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Runs a one-input one-output graph before and after `rewrite`; returns both outputs and the rewritten op types. */
async function runBoth(
  nodes: NodeProto[], inits: TensorProto[], inDims: number[], outName: string, rewrite: (index: GraphIndex, model: ModelProto) => number,
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
  const count = rewrite(index, model);
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

describe('int8 products (the int8-transformer profile)', () => {
  it('quantizes each weight column symmetrically to ±63 with its own scale, within half a step', () => {
    const rand = rng(11);
    const [k, n] = [9, 4];
    const w = randArray(k * n, rand);
    for (let r = 0; r < k; r++) w[r * n + 3] *= 1e-3; // a column of small weights keeps its resolution
    const { q, scale } = quantizeColumns(w, k, n);
    for (let c = 0; c < n; c++) {
      let peak = 0;
      for (let r = 0; r < k; r++) {
        peak = Math.max(peak, Math.abs(q[r * n + c]));
        expect(Math.abs(q[r * n + c] * scale[c] - w[r * n + c])).toBeLessThanOrEqual(scale[c] / 2 + 1e-9);
      }
      expect(peak).toBe(WEIGHT_LEVELS);
    }
    expect(scale[3]).toBeLessThan(scale[0] / 100);
  });

  it('turns MatMul (+ its bias Add) and Gemm (transB, bias) with constant weights into DynamicQuantizeMatMul, close to fp32', async () => {
    const rand = rng(12);
    const [k, n] = [64, 48];
    const nodes = [
      makeNode('MatMul', ['x', 'w1'], ['m'], 'mm'),
      makeNode('Add', ['m', 'b1'], ['h'], 'bias'),
      makeNode('Reshape', ['h', 'flat'], ['h2'], 'flatten'),
      makeNode('Gemm', ['h2', 'w2', 'b2'], ['g'], 'gemm', [intAttr('transB', 1)]),
      makeNode('MatMul', ['g', 'g'], ['y'], 'dynamic'), // no constant weight: left alone
    ];
    const inits = [
      floatTensor('w1', [k, n], randArray(k * n, rand, 0.2)), floatTensor('b1', [n], randArray(n, rand)),
      int64Tensor('flat', [-1, n]),
      floatTensor('w2', [n, n], randArray(n * n, rand, 0.2)), floatTensor('b2', [n], randArray(n, rand)),
    ];
    const r = await runBoth(nodes, inits, [n, k], 'y', (index, model) => quantizeMatMuls(model, index, () => true));
    expect(r.count).toBe(2);
    expect(r.ops).toEqual(['DynamicQuantizeMatMul', 'Reshape', 'DynamicQuantizeMatMul', 'MatMul']);
    const db = snrDb(r.before, r.after);
    console.log(`int8 products vs fp32 on a toy graph: ${db.toFixed(1)} dB`);
    expect(db).toBeGreaterThan(25);
    expect(db).toBeLessThan(80); // really quantized
  });

  it('leaves the node a filter excludes, and a Gemm with alpha ≠ 1, alone', async () => {
    const rand = rng(13);
    const nodes = [
      makeNode('MatMul', ['x', 'w'], ['m'], 'keep-me'),
      makeNode('Gemm', ['m', 'w'], ['y'], 'scaled', [floatAttr('alpha', 0.5)]),
    ];
    const inits = [floatTensor('w', [8, 8], randArray(64, rand))];
    const r = await runBoth(nodes, inits, [3, 8], 'y', (index, model) => quantizeMatMuls(model, index, (node) => node.name !== 'keep-me'));
    expect(r.count).toBe(0);
    expect(r.ops).toEqual(['MatMul', 'Gemm']);
    expect(maxAbsDiff(r.before, r.after)).toBe(0);
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

  it('int8-transformer: cached under its own name beside the exact one (which stays on disk), SNR ≥ 30 dB from exact on music', async () => {
    const exact = await loadModelGraph({ modelPath, graph: 'optimized', sessionOptions, warn });
    const ref = await exact.model.run(mix.slice(), spec.slice());
    await exact.model.close();
    warnings.length = 0;
    const int8 = await loadModelGraph({ modelPath, graph: 'optimized', profile: 'int8-transformer', sessionOptions, warn });
    try {
      expect(warnings).toEqual([]);
      expect(int8.profile).toBe('int8-transformer');
      expect(path.basename(int8.graphPath)).toMatch(/^htdemucs\.int8-transformer\.[0-9a-f]{16}\.onnx$/);
      expect(existsSync(exact.graphPath) && existsSync(fingerprintPathFor(exact.graphPath))).toBe(true);
      const passes = Object.fromEntries(int8.produced!.report.map((p) => [p.pass, p.rewritten]));
      expect(passes['int8-transformer-matmul']).toBe(40);
      expect(int8.produced!.agreement.snrDb).toBeGreaterThanOrEqual(INT8_MIN_SNR_DB);
      const out = await int8.model.run(mix.slice(), spec.slice());
      const dbFreq = snrDb(ref.freq, out.freq);
      const dbTime = snrDb(ref.time, out.time);
      console.log(`int8-transformer vs exact on a music segment: ${dbFreq.toFixed(1)} dB (freq), ${dbTime.toFixed(1)} dB (time); fingerprint ${int8.produced!.agreement.snrDb.toFixed(1)} dB`);
      expect(Math.min(dbFreq, dbTime)).toBeGreaterThanOrEqual(INT8_MIN_SNR_DB);
      expect(maxAbsDiff(ref.freq, out.freq)).toBeGreaterThan(GRAPH_TOLERANCE); // approximate indeed
    } finally {
      await int8.model.close();
    }
  }, 300_000);

  it('an approximate profile on the original graph is refused before anything loads', async () => {
    await expect(createEngine({ modelPath: path.join(dir, 'none.onnx'), graph: 'original', profile: 'int8-transformer' })).rejects.toThrow(/needs graph 'optimized'/);
  });
});
