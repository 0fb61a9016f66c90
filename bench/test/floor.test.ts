import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { floorOf, matMulModel, nodeFlops, summarizeProfile } from '../floor.ts';

describe('the floor arithmetic of bench:separate', () => {
  it('counts a convolution as 2 × outputs × the kernel window of its group', () => {
    // [1,48,8,336] -> [1,96,8,336], kernel 1x3 over 48 channels
    expect(nodeFlops('Conv', [[1, 48, 8, 336], [96, 48, 1, 3]], [[1, 96, 8, 336]])).toBe(2 * 96 * 8 * 336 * 48 * 3);
  });

  it('counts a ConvTranspose whose prepacked weight the profile omits from its shapes (stride 4, kernel 8)', () => {
    const x = [1, 384, 1344];
    const y = [1, 192, (1344 - 1) * 4 + 8];
    expect(nodeFlops('ConvTranspose', [x, [192]], [y])).toBe(2 * 384 * 1344 * 192 * 8);
  });

  it('finds the inner dimension of transposed FusedMatMul operands from element counts', () => {
    // attention scores: Q [T,1,8,64] · Kᵀ → [1,8,T,T]; then scores · V → [1,8,T,64]
    const t = 2688;
    expect(nodeFlops('FusedMatMul', [[t, 1, 8, 64], [t, 1, 8, 64]], [[1, 8, t, t]])).toBe(2 * 8 * t * t * 64);
    expect(nodeFlops('FusedMatMul', [[1, 8, t, t], [t, 1, 8, 64]], [[1, 8, t, 64]])).toBe(2 * 8 * t * 64 * t);
    // Gemm with its weight prepacked: only A and the bias are listed
    expect(nodeFlops('Gemm', [[1344, 512], [1536]], [[1344, 1536]])).toBe(2 * 1344 * 1536 * 512);
  });

  it('gives element-wise ops no FLOPs (they are memory-bound and judged by time)', () => {
    expect(nodeFlops('Mul', [[1, 48, 2048, 336], [1]], [[1, 48, 2048, 336]])).toBe(0);
  });

  it('sums kernel events per op type over the runs after the warm-up', () => {
    const node = (ts: number, name: string, op: string, dur: number) => ({
      cat: 'Node',
      name: `${name}_kernel_time`,
      ts,
      dur,
      args: { op_name: op, input_type_shape: [{ float: [4, 8] }, { float: [8, 2] }], output_type_shape: [{ float: [4, 2] }] },
    });
    const events = [
      { cat: 'Session', name: 'model_run', ts: 0, dur: 100 },
      node(1, 'mm', 'MatMul', 90),
      { cat: 'Session', name: 'model_run', ts: 200, dur: 30 },
      node(201, 'mm', 'MatMul', 20),
      node(222, 'add', 'Add', 5),
      { cat: 'Session', name: 'model_run', ts: 300, dur: 30 },
      node(301, 'mm', 'MatMul', 10),
    ];
    const p = summarizeProfile(events, 1);
    expect(p.runs).toBe(2);
    const mm = p.groups.find((g) => g.op === 'MatMul')!;
    expect(mm.nodes).toBe(1);
    expect(mm.msPerRun).toBeCloseTo(0.015);
    expect(mm.gflop).toBeCloseTo((2 * 4 * 2 * 8) / 1e9);
    expect(p.groups.find((g) => g.op === 'Add')!.msPerRun).toBeCloseTo(0.0025);
  });

  it('puts the floor at model cost over GEMM rate and the steady state as a multiple of it', () => {
    const f = floorOf(335, { shape: { m: 2688, k: 512, n: 2048 }, threads: 2, medianGflops: 155, bestGflops: 163 }, 3.4);
    expect(f.floorSec).toBeCloseTo(2.161, 3);
    expect(f.ratio).toBeCloseTo(1.573, 3);
  });

  it('builds a MatMul model with constant weights that onnxruntime loads and computes correctly', async () => {
    const session = await ort.InferenceSession.create(matMulModel({ m: 1, k: 2, n: 3 }));
    const out = await session.run({ A: new ort.Tensor('float32', Float32Array.from([1, 2]), [1, 2]) });
    // W is filled by the same rule as in the model: (((i + 7) · 2654435761) mod 1000) / 1000 − 0.5
    const w = [0, 1, 2, 3, 4, 5].map((i) => ((((i + 7) * 2654435761) % 1000) / 1000) - 0.5);
    const expected = [0, 1, 2].map((j) => 1 * w[j]! + 2 * w[3 + j]!);
    const got = Array.from(out.Y!.data as Float32Array);
    got.forEach((v, j) => expect(v).toBeCloseTo(expected[j]!, 5));
    await session.release();
  });
});
