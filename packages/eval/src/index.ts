export { recallAtK, DEFAULT_KS } from './recall.js';
export type { RecallResult, RecallOptions } from './recall.js';
export { recallAtKParallel } from './parallel.js';
export type { ParallelRecallOptions } from './parallel.js';
export { nearestNeighbours } from './retrieve.js';
export type { Retrieval } from './retrieve.js';
export { l2NormalizeRows } from './normalize.js';
export { formatRecallTable, formatRecallMarkdown } from './table.js';
export type { RecallTableRow, RecallTableOptions } from './table.js';
