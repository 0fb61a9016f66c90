/** `npm start`: rest + one worker + logs on this machine (see scripts/local-stack.ts). */
import { startLocalStack } from './local-stack.ts';

const started = Date.now();
process.stdout.write('MSaaS-TS: starting redis check, object store, logs, rest, worker (the worker loads the 174 MB model and warms it up)…\n');
const stack = await startLocalStack({
  onLine: (service, line) => {
    // Services log JSON to stdout for machines; the logs service prints the readable stream, so show that and errors.
    if (service === 'logs' || service === 'redis' || service === 'store' || !line.startsWith('{')) process.stdout.write(`${line}\n`);
  },
}).catch((err: Error) => {
  process.stderr.write(`npm start failed: ${err.message}\n`);
  process.exit(1);
});
process.stdout.write(`\nMSaaS-TS is up in ${((Date.now() - started) / 1000).toFixed(1)} s: ${stack.url}\n  page:   ${stack.url}/\n  submit: curl -s -X POST ${stack.url}/apiv1/separate -F file=@song.mp3\nCtrl-C stops everything.\n\n`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  process.stdout.write('\nstopping…\n');
  await stack.stop();
  process.stdout.write('stopped.\n');
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
for (const [name, child] of stack.children) {
  child.on('exit', (code, signal) => {
    if (stopping) return;
    process.stderr.write(`${name} exited unexpectedly (${signal ?? code}); stopping\n`);
    void stop().then(() => process.exit(1));
  });
}
