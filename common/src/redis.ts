import { Redis, type RedisOptions } from 'ioredis';

export type RedisRole = 'api' | 'worker' | 'subscriber';

/**
 * One place for connection behaviour. The API fails fast while Redis is down (503, not a hang);
 * workers and subscribers queue commands and reconnect forever.
 */
export function createRedis(url: string, role: RedisRole, extra: RedisOptions = {}): Redis {
  const base: RedisOptions = {
    lazyConnect: false,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    // Only a failover (a replica answering writes) is worth a new connection. An error reply such
    // as OOM under maxmemory is that request's failure: dropping the shared connection for it
    // would fail every other request in flight too.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
  const byRole: Record<RedisRole, RedisOptions> = {
    api: { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 3000, connectTimeout: 2000 },
    worker: { maxRetriesPerRequest: null, connectTimeout: 5000 },
    subscriber: { maxRetriesPerRequest: null, connectTimeout: 5000 },
  };
  const client = new Redis(url, { ...base, ...byRole[role], ...extra });
  // Errors surface through commands and readiness; an unhandled 'error' event must not crash the process.
  client.on('error', () => undefined);
  return client;
}

/** The URL for a log line: user and host kept, the password never printed. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable REDIS_URL)';
  }
}

/**
 * Subscribes once the connection is ready. A SUBSCRIBE sent while ioredis is still in its connect
 * handshake (CLIENT SETINFO, the INFO ready check, SELECT for a db other than 0) can be lost among
 * those commands and never answered — the process then never hears an event (seen with rest on db
 * 1 and 2; ioredis issue #2037). After the first one, ioredis resubscribes on every reconnect.
 */
export async function subscribeWhenReady(subscriber: Redis, channel: string): Promise<void> {
  // Not events.once: it would reject on the first connection error; we wait for Redis instead.
  if (subscriber.status !== 'ready') await new Promise<void>((resolve) => subscriber.once('ready', () => resolve()));
  await subscriber.subscribe(channel);
}
