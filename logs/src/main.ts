import { createRedis, formatLogEvent, loadConfigOrExit, makeKeys, redactRedisUrl } from '@msaas/common';
import { subscribeLogs } from './subscriber.ts';

const config = loadConfigOrExit();
const keys = makeKeys(config.REDIS_PREFIX);
const subscriber = createRedis(config.REDIS_URL, 'subscriber');
let connectedOnce = false;
subscriber.on('ready', () => {
  process.stdout.write(`${new Date().toISOString()} logs   ${connectedOnce ? 're' : ''}subscribed to ${keys.loggingChannel} on ${redactRedisUrl(config.REDIS_URL)}\n`);
  connectedOnce = true;
  process.send?.({ type: 'ready' });
});
await subscribeLogs(subscriber, keys.loggingChannel, (event) => {
  process.stdout.write(`${formatLogEvent(event)}\n`);
});

const stop = (): void => {
  subscriber.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
