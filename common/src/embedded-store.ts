import { mkdirSync } from 'node:fs';
import S3rver from 's3rver';
import type { StoreEndpoint } from './store.ts';

export interface EmbeddedStore {
  endpoint: StoreEndpoint;
  close(): Promise<void>;
}

/**
 * An S3-compatible server from npm (s3rver) on a loopback port, for `npm start` without MinIO and
 * for tests. The services still talk to it through the real minio client over HTTP.
 */
export async function startEmbeddedStore(opts: { directory: string; port?: number; address?: string }): Promise<EmbeddedStore> {
  mkdirSync(opts.directory, { recursive: true });
  const server = new S3rver({ port: opts.port ?? 0, address: opts.address ?? '127.0.0.1', silent: true, directory: opts.directory });
  const info = await server.run();
  return {
    endpoint: { endPoint: '127.0.0.1', port: info.port, useSSL: false, accessKey: 'S3RVER', secretKey: 'S3RVER', region: 'us-east-1' },
    close: () => server.close(),
  };
}
