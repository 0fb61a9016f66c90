import type { Redis } from 'ioredis';
import { subscribeWhenReady } from '@msaas/common';

type Listener = () => void;

/**
 * Fans job-change notifications (Redis channel `job-events`, one message = one songhash) out to
 * the SSE streams of this process, over a single subscriber connection.
 */
export class JobEvents {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly closers = new Set<() => void>();

  constructor(
    private readonly subscriber: Redis,
    private readonly channel: string,
  ) {
    subscriber.on('message', (ch: string, hash: string) => {
      if (ch !== channel) return;
      for (const l of this.listeners.get(hash) ?? []) l();
    });
  }

  /** Subscribes to the job-event channel (once the connection is ready: see subscribeWhenReady). */
  async start(): Promise<void> {
    await subscribeWhenReady(this.subscriber, this.channel);
  }

  /** Registers a stream; `onClose` ends it when the process shuts down. Returns the unsubscribe. */
  on(hash: string, listener: Listener, onClose?: () => void): () => void {
    let set = this.listeners.get(hash);
    if (!set) this.listeners.set(hash, (set = new Set()));
    set.add(listener);
    if (onClose) this.closers.add(onClose);
    return () => {
      set.delete(listener);
      if (onClose) this.closers.delete(onClose);
      if (set.size === 0 && this.listeners.get(hash) === set) this.listeners.delete(hash);
    };
  }

  async close(): Promise<void> {
    for (const close of [...this.closers]) close();
    this.closers.clear();
    this.listeners.clear();
    this.subscriber.disconnect();
  }
}
