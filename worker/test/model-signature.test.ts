import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import { signatureDifferences } from '../src/separation/model.ts';

const { onnx } = onnxProto;
const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const SEGMENT = 343980;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

const valueInfo = (name: string, dims: number[]) =>
  onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
const floatConst = (name: string, dims: number[], value: number) =>
  onnx.TensorProto.create({ name, dims, dataType: FLOAT, floatData: new Array<number>(dims.reduce((a, b) => a * b, 1)).fill(value) });

/** A loadable ONNX graph with HTDemucs' inputs but six sources out (as the 6-stem model has): the stand-in's graph with 6 for 4. */
function sixSourceModel(): Uint8Array {
  const graph = onnx.GraphProto.create({
    name: 'six-sources',
    input: [valueInfo('mix', [1, 2, SEGMENT]), valueInfo('spec', [1, 4, 2048, 336])],
    output: [valueInfo('freq', [1, 6, 4, 2048, 336]), valueInfo('time', [1, 6, 2, SEGMENT])],
    initializer: [
      onnx.TensorProto.create({ name: 'axis1', dims: [1], dataType: onnx.TensorProto.DataType.INT64, int64Data: [1] }),
      floatConst('gain', [1, 6, 1, 1], 0.2),
      floatConst('zero', [1, 6, 1, 1, 1], 0),
    ],
    node: [
      onnx.NodeProto.create({ opType: 'Unsqueeze', input: ['mix', 'axis1'], output: ['mix5'] }),
      onnx.NodeProto.create({ opType: 'Mul', input: ['mix5', 'gain'], output: ['time'] }),
      onnx.NodeProto.create({ opType: 'Unsqueeze', input: ['spec', 'axis1'], output: ['spec5'] }),
      onnx.NodeProto.create({ opType: 'Mul', input: ['spec5', 'zero'], output: ['freq'] }),
    ],
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 7, producerName: 'msaas-ts test', opsetImport: [{ domain: '', version: 13 }], graph })).finish();
}

describe('a MODEL_PATH file with another signature', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'msaas-signature-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names each value that differs, whatever the values are called', () => {
    expect(signatureDifferences(
      [{ name: 'mix', isTensor: true, type: 'float32', shape: [1, 2, SEGMENT] }, { name: 'spec', isTensor: true, type: 'float32', shape: [1, 4, 2048, 336] }],
      [{ name: 'a', isTensor: true, type: 'float32', shape: [1, 4, 4, 2048, 336] }, { name: 'b', isTensor: true, type: 'float32', shape: [1, 4, 2, SEGMENT] }],
    )).toEqual([]);
    expect(signatureDifferences(
      [{ name: 'mix', isTensor: true, type: 'float16', shape: [1, 2, SEGMENT] }],
      [{ name: 'a', isTensor: true, type: 'float32', shape: [1, 4, 4, 2048, 336] }, { name: 'b', isTensor: true, type: 'float32', shape: [1, 6, 2, SEGMENT] }],
    )).toEqual([
      'it has 1 inputs, HTDemucs 2',
      "the waveform input mix is float16, HTDemucs' is float32",
      'no spectrogram input [1,4,2048,336]',
      `the time-branch output b is [1,6,2,${SEGMENT}], HTDemucs' is [1,4,2,${SEGMENT}]`,
    ]);
  });

  it('stops the worker at start (exit 2) with a sentence naming what differs', async () => {
    const model = path.join(dir, 'htdemucs_6s.onnx');
    writeFileSync(model, sixSourceModel());
    const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), [path.join(ROOT, 'worker/src/main.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, MODEL_PATH: model, ORT_GRAPH: 'original', MINIO_ENDPOINT: '127.0.0.1', MINIO_PORT: '9', REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PREFIX: `sig-${process.pid}:`, LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, err).toBe(2);
    expect(err).toContain(model);
    expect(err).toMatch(/has another signature than HTDemucs: the frequency-branch output freq is \[1,6,4,2048,336\], HTDemucs' is \[1,4,4,2048,336\]; the time-branch output time is \[1,6,2,343980\], HTDemucs' is \[1,4,2,343980\]/);
  }, 120_000);
});
