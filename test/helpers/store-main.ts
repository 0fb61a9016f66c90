// The embedded S3-compatible store as a process of its own (see processes.ts ownStore).
import { startEmbeddedStore } from '@msaas/common';

await startEmbeddedStore({ directory: process.env.STORE_DIR!, port: Number(process.env.STORE_PORT) });
process.send?.({ type: 'ready' });
