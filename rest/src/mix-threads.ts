import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import type { Extension, OutputFormat } from '@msaas/common';
import type { Mp3Quality } from '@msaas/common/audio-encode/index';
import type { FromMixThread, ToMixThread } from './mix-protocol.ts';

const ENTRY = fileURLToPath(new URL('./mix-thread.mjs', import.meta.url));

export interface MixSpec {
  ext: Extension;
  format: OutputFormat;
  vbr: Mp3Quality;
  /** Samples per channel of the mix (the stems' length). */
  total: number;
  /** The stored stems' bytes as they stream from the store, and each one's gain. */
  sources: { stream: Readable; gain: number }[];
}

interface Thread {
  worker: Worker;
  ready: Promise<void>;
  mixes: Map<number, (m: FromMixThread) => void>;
}

/**
 * Where the custom mix's CPU runs: a few threads of their own (mix-render.ts), each running several
 * mixes block by block, so the request thread only moves bytes. Why not on the request thread, a
 * block at a time: libuv (Node 20) accepts one pending connection per event-loop iteration while
 * the loop is busy, so every millisecond of mixing in an iteration delays each queued connection
 * again — 4 mixes of ~10 ms a block made a /healthz 0.8–1.2 s late while no single stall passed
 * ~120 ms (docs/security.md item 1). How many mixes run is bounded by the mix slots
 * (MAX_CONCURRENT_MIXES, mix-limits.ts); `size` threads share them (a new mix goes to the thread
 * with the fewest). `warm()` starts the threads ahead of the first mix (loading and compiling the
 * codecs takes a second or more), else the first mix starts them.
 */
export class MixThreads {
  private readonly threads: Thread[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly size: number) {}

  /** Starts the threads now (rest's main does, once listening). */
  warm(): Promise<void> {
    while (this.threads.length < this.size) this.threads.push(this.spawn());
    return Promise.all(this.threads.map((t) => t.ready)).then(() => undefined);
  }

  /**
   * Renders one mix: `write` gets the encoded bytes in order (false: the client has gone) and is
   * awaited before the next block is made. Resolves when the mix is whole (true) or abandoned
   * (false: `signal` aborted or `write` answered false); rejects when a stem cannot be read or
   * decoded, or the thread died.
   */
  async render(spec: MixSpec, write: (bytes: Uint8Array[]) => Promise<boolean>, signal: AbortSignal): Promise<boolean> {
    if (this.closed) throw new Error('rest is closing');
    const thread = this.pick();
    await thread.ready;
    const id = this.nextId++;
    const send = (m: ToMixThread): void => thread.worker.postMessage(m);
    const iterators = spec.sources.map((s) => s.stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>);
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      for (const s of spec.sources) s.stream.destroy();
      send({ type: 'stop', id });
    };
    try {
      return await new Promise<boolean>((resolve, reject) => {
        let outcome: { ok: boolean } | { error: Error } = { ok: false };
        // The last block's write may still be going when the thread says the mix has ended.
        let writing: Promise<void> = Promise.resolve();
        const onAbort = (): void => stop();
        const settle = (): void => {
          thread.mixes.delete(id);
          signal.removeEventListener('abort', onAbort);
          void writing.then(() => ('error' in outcome ? reject(outcome.error) : resolve(outcome.ok)));
        };
        thread.mixes.set(id, (m) => {
          switch (m.type) {
            case 'need':
              iterators[m.stem]!.next().then(
                (r) => !stopping && send({ type: 'bytes', id, stem: m.stem, chunk: r.done ? null : r.value }),
                (err: unknown) => !stopping && send({ type: 'read-error', id, stem: m.stem, message: err instanceof Error ? err.message : String(err) }),
              );
              return;
            case 'out':
              writing = write(m.bytes).then((ok) => {
                if (!ok) return stop();
                if (m.last) outcome = { ok: true };
                else if (!stopping) send({ type: 'go', id });
              });
              return;
            case 'failed':
              outcome = { error: new Error(m.message) };
              return;
            case 'ended':
              return settle();
            case 'ready':
              return;
          }
        });
        if (signal.aborted) stop();
        else signal.addEventListener('abort', onAbort, { once: true });
        send({ type: 'start', id, ext: spec.ext, gains: spec.sources.map((s) => s.gain), format: spec.format, vbr: spec.vbr, total: spec.total });
      });
    } finally {
      for (const s of spec.sources) s.stream.destroy();
    }
  }

  /** Ends every thread (rest's close). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.splice(0).map((t) => t.worker.terminate()));
  }

  /** The thread with the fewest mixes, started if fewer than `size` run. */
  private pick(): Thread {
    const least = [...this.threads].sort((a, b) => a.mixes.size - b.mixes.size)[0];
    if (least && (least.mixes.size === 0 || this.threads.length >= this.size)) return least;
    const t = this.spawn();
    this.threads.push(t);
    return t;
  }

  private spawn(): Thread {
    const worker = new Worker(ENTRY);
    worker.unref();
    const mixes = new Map<number, (m: FromMixThread) => void>();
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: FromMixThread) => {
        if (m.type === 'ready') return resolve();
        mixes.get(m.id)?.(m);
      });
      // A thread that dies fails its mixes (their requests answer 500, their slots free) and is replaced by the next mix.
      const died = (err: Error): void => {
        reject(err);
        const i = this.threads.findIndex((t) => t.worker === worker);
        if (i >= 0) this.threads.splice(i, 1);
        for (const [id, on] of mixes) on({ type: 'failed', id, message: `mix thread: ${err.message}` });
        for (const [id, on] of [...mixes]) on({ type: 'ended', id });
      };
      worker.once('error', died);
      worker.once('exit', (code) => died(new Error(`exited with code ${code}`)));
    });
    ready.catch(() => undefined);
    return { worker, ready, mixes };
  }
}
