// Worker threads do not inherit tsx's module hooks on Node 20, so each training worker
// registers them itself before importing the TypeScript worker module.
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
