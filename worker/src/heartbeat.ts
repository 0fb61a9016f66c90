import { Worker as Thread } from 'node:worker_threads';
import { scriptSource } from '@msaas/common';

export interface HeartbeatOptions {
  url: string;
  heartbeatKey: string;
  workersKey: string;
  workerId: string;
  ttlSec: number;
  intervalMs: number;
}

/**
 * The heartbeat key, refreshed from a thread of its own (see heartbeat-thread.mjs) so that
 * seconds of synchronous DSP on the job loop's thread never let it lapse while the process lives.
 */
export class Heartbeat {
  /** When a beat last reached Redis (ms since epoch; 0 = never). */
  lastOk = 0;
  private readonly thread: Thread;
  private readonly firstBeat: Promise<void>;

  constructor(opts: HeartbeatOptions) {
    // The thread runs the queue's own heartbeat script: the write is defined once, in heartbeat-2.lua.
    const workerData = { ...opts, script: scriptSource('heartbeat-2') };
    this.thread = new Thread(new URL('./heartbeat-thread.mjs', import.meta.url), { workerData });
    this.thread.unref();
    let first!: () => void;
    this.firstBeat = new Promise<void>((r) => (first = r));
    this.thread.on('message', (msg: { type: string; ok?: boolean }) => {
      if (msg.type !== 'beat') return;
      if (msg.ok) this.lastOk = Date.now();
      first();
    });
    this.thread.on('error', () => first());
  }

  /** Resolves after the first beat was tried (reached Redis or not), at most `timeoutMs`. */
  started(timeoutMs = 5000): Promise<void> {
    return Promise.race([this.firstBeat, new Promise<void>((r) => setTimeout(r, timeoutMs).unref())]);
  }

  /** Stops beating (the caller then deletes the key, so that no late beat can recreate it). */
  async stop(): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      this.thread.once('exit', () => resolve());
      this.thread.on('message', (msg: { type: string }) => msg.type === 'stopped' && resolve());
    });
    this.thread.postMessage({ type: 'stop' });
    await Promise.race([stopped, new Promise<void>((r) => setTimeout(r, 3000).unref())]);
    await this.thread.terminate();
  }
}
