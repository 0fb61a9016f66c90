// A mix thread's entry: TypeScript through tsx (the process itself may run without it, e.g. under vitest), then the body.
import { register } from 'tsx/esm/api';

register();
await import('./mix-render.ts');
