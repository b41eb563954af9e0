export { Rng } from './rng.js';
export { RANDOM_STREAMS, streamRng, type RandomStreamName } from './streams.js';
