// Worker threads do not inherit tsx's module hooks on Node 20, so a worker started from the
// TypeScript sources registers them itself before importing its TypeScript entry module.
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
