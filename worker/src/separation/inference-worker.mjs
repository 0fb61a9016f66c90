// @ts-check
// Runs the ONNX session on its own thread: onnxruntime-node's `session.run` blocks the thread that
// calls it, and the engine needs its thread free to decode, transform and encode while the model
// runs. Plain JavaScript so it loads the same way under tsx, vitest and node alone.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

if (!parentPort) throw new Error('inference-worker must run in a worker thread');
const port = parentPort;

/** @type {{ modelPath: string, sessionOptions: import('onnxruntime-node').InferenceSession.SessionOptions }} */
const { modelPath, sessionOptions } = workerData;

/** @type {import('onnxruntime-node').InferenceSession | null} */
let session = null;
try {
  session = await ort.InferenceSession.create(modelPath, sessionOptions);
  const meta = (/** @type {readonly any[]} */ list) =>
    list.map((m) => ({ name: m.name, isTensor: m.isTensor, type: m.type, shape: m.shape }));
  port.postMessage({
    type: 'ready',
    inputs: meta(session.inputMetadata),
    outputs: meta(session.outputMetadata),
  });
} catch (err) {
  port.postMessage({ type: 'load-error', message: err instanceof Error ? err.message : String(err) });
}

/** Returns the tensor's data as a transferable Float32Array, copying only if ORT owns the memory. */
function own(/** @type {import('onnxruntime-node').Tensor} */ t) {
  const data = /** @type {Float32Array} */ (t.data);
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !(data.buffer instanceof SharedArrayBuffer)) {
    return data;
  }
  return data.slice();
}

port.on('message', async (msg) => {
  if (msg.type === 'close') {
    await session?.release();
    session = null;
    port.close();
    return;
  }
  if (msg.type !== 'run') return;
  if (!session) {
    port.postMessage({ type: 'run-error', id: msg.id, message: 'session not loaded' });
    return;
  }
  try {
    const [waveName, specName] = msg.inputOrder;
    const feeds = {
      [waveName]: new ort.Tensor('float32', msg.mix, msg.mixDims),
      [specName]: new ort.Tensor('float32', msg.spec, msg.specDims),
    };
    const t0 = performance.now();
    const out = await session.run(feeds);
    const runMs = performance.now() - t0;
    const freq = own(out[msg.outputOrder[0]]);
    const time = own(out[msg.outputOrder[1]]);
    const transfer = [freq.buffer, time.buffer, msg.mix.buffer, msg.spec.buffer];
    try {
      port.postMessage({ type: 'result', id: msg.id, freq, time, mix: msg.mix, spec: msg.spec, runMs }, transfer);
    } catch {
      // ORT-owned buffers may not be detachable: send copies.
      const f2 = freq.slice(), t2 = time.slice();
      port.postMessage({ type: 'result', id: msg.id, freq: f2, time: t2, mix: msg.mix, spec: msg.spec, runMs }, [
        f2.buffer, t2.buffer, msg.mix.buffer, msg.spec.buffer,
      ]);
    }
  } catch (err) {
    port.postMessage({ type: 'run-error', id: msg.id, message: err instanceof Error ? err.message : String(err), mix: msg.mix, spec: msg.spec });
  }
});
