import type { Redis } from 'ioredis';

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

  /**
   * Subscribes once the connection is ready. A SUBSCRIBE sent while ioredis is still in its
   * connect handshake (CLIENT SETINFO, the INFO ready check, SELECT for a db other than 0) can be
   * lost among those commands and never answered — the process then never hears a job event
   * (seen with rest on db 1 and 2; ioredis issue #2037). After the first one, ioredis itself
   * resubscribes on every reconnect.
   */
  async start(): Promise<void> {
    // Not events.once: it would reject on the first connection error; we wait for Redis instead.
    if (this.subscriber.status !== 'ready') await new Promise<void>((resolve) => this.subscriber.once('ready', () => resolve()));
    await this.subscriber.subscribe(this.channel);
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
