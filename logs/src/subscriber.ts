import type { Redis } from 'ioredis';
import { parseLogEvent, subscribeWhenReady, type LogEvent } from '@msaas/common';

/** Subscribes to the log channel and hands each well-formed event to `onEvent`. */
export async function subscribeLogs(subscriber: Redis, channel: string, onEvent: (e: LogEvent) => void): Promise<void> {
  subscriber.on('message', (ch: string, raw: string) => {
    if (ch !== channel) return;
    const event = parseLogEvent(raw);
    if (event) onEvent(event);
  });
  await subscribeWhenReady(subscriber, channel);
}
