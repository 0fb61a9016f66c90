import { readFile, writeFile } from 'node:fs/promises';
import { ApiClient } from '@msaas/client';

const api = new ApiClient({ baseUrl: process.env.MSAAS_URL ?? 'http://localhost:5000', ...(process.env.API_KEY ? { apiKey: process.env.API_KEY } : {}) });
const { hash, reason } = await api.upload(await readFile(process.argv[2] ?? 'song.mp3'), { filename: 'song.mp3', format: 'flac' });
console.log(hash, reason);
for await (const job of api.events(hash)) console.log(job.state, `${Math.round(job.progress * 100)} %`);
const vocals = await api.stem(hash, 'vocals', { format: 'flac' });
await writeFile('vocals.flac', vocals.bytes);
console.log(`vocals.flac: ${vocals.bytes.length} bytes (${vocals.contentType})`);
