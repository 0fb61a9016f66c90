/**
 * A stand-in for the HTDemucs ONNX weights with exactly its input/output signature, so the whole
 * real pipeline (decode, STFT, chunking, iSTFT, overlap-add, MP3 encode, uploads) runs with an
 * inference of milliseconds. Used where the real model (~10–20 s a short clip on 2 cores) would
 * make a test too slow to repeat.
 *
 *   time[s] = 0.25 × input   for each of the 4 sources  → each stem ≈ mix / 4
 *   freq    = 0 × spec       (the frequency branch adds nothing)
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const SEGMENT = 343980;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

function valueInfo(name: string, dims: number[]): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
}

function floatConst(name: string, dims: number[], value: number): InstanceType<typeof onnx.TensorProto> {
  const count = dims.reduce((a, b) => a * b, 1);
  return onnx.TensorProto.create({ name, dims, dataType: FLOAT, floatData: new Array<number>(count).fill(value) });
}

/** The serialized stand-in graph (opset 13, a few hundred bytes). */
export function standinModelBytes(gain = 0.25): Uint8Array {
  const graph = onnx.GraphProto.create({
    name: 'htdemucs-standin',
    input: [valueInfo('input', [1, 2, SEGMENT]), valueInfo('onnx::ReduceMean_1', [1, 4, 2048, 336])],
    output: [valueInfo('freq', [1, 4, 4, 2048, 336]), valueInfo('time', [1, 4, 2, SEGMENT])],
    initializer: [
      onnx.TensorProto.create({ name: 'axis1', dims: [1], dataType: INT64, int64Data: [1] }),
      floatConst('gain', [1, 4, 1, 1], gain),
      floatConst('zero', [1, 4, 1, 1, 1], 0),
    ],
    node: [
      onnx.NodeProto.create({ opType: 'Unsqueeze', input: ['input', 'axis1'], output: ['wave5'], name: 'u_wave' }),
      onnx.NodeProto.create({ opType: 'Mul', input: ['wave5', 'gain'], output: ['time'], name: 'm_time' }),
      onnx.NodeProto.create({ opType: 'Unsqueeze', input: ['onnx::ReduceMean_1', 'axis1'], output: ['spec5'], name: 'u_spec' }),
      onnx.NodeProto.create({ opType: 'Mul', input: ['spec5', 'zero'], output: ['freq'], name: 'm_freq' }),
    ],
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'msaas-ts reliability tests',
    opsetImport: [{ domain: '', version: 13 }],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Writes the stand-in once per machine (atomically) and returns its path, for MODEL_PATH. */
export function standinModelPath(dir = path.join(os.tmpdir(), 'msaas-standin-model')): string {
  const file = path.join(dir, 'htdemucs-standin-v1.onnx');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, standinModelBytes());
    renameSync(tmp, file);
  }
  return file;
}
