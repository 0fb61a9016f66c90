// A real rest process (node rest/src/main.ts, as the image runs it) for tests about the network:
// started with only the environment given, its output kept, its ports taken from the IPC messages
// main.ts sends once each listener is up.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export interface RestProcess {
  child: ChildProcess;
  port: number;
  /** The admin listener's port (ADMIN_PORT), when `wantAdmin` was asked; else null. */
  adminPort: number | null;
  output: string[];
}

/** Starts rest; resolves once the API listener (and, with `wantAdmin`, the admin listener) is up. */
export function startRestProcess(env: Record<string, string>, opts: { wantAdmin?: boolean } = {}): Promise<RestProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'rest/src/main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  return new Promise((resolve, reject) => {
    let port: number | null = null;
    let adminPort: number | null = null;
    const timer = setTimeout(() => reject(new Error(`rest did not listen within 60 s:\n${output.join('')}`)), 60_000);
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m.type === 'listening') port = m.port!;
      if (m.type === 'admin-listening') adminPort = m.port!;
      if (port !== null && (!opts.wantAdmin || adminPort !== null)) {
        clearTimeout(timer);
        resolve({ child, port, adminPort, output });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`rest exited with ${code}:\n${output.join('')}`));
    });
  });
}

/** SIGTERM and wait for the exit (nothing to do for a process that is gone or never started). */
export async function stopRestProcess(rest: RestProcess | undefined): Promise<void> {
  if (!rest || rest.child.exitCode !== null || rest.child.signalCode !== null) return;
  const exited = new Promise((r) => rest.child.once('exit', r));
  rest.child.kill('SIGTERM');
  await exited;
}
