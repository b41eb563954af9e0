export { DEFAULT_CONFIG, PRESETS, parseTrainArgs, validateConfig, validateAgainstData, type TrainConfig, type BackendChoice, type PipelineKind } from './config.js';
export { train, embedSplit, RECALL_KS, type TrainResult, type EpochLog, type TrainHooks } from './trainer.js';
export { RunsDb, type RunRow } from './runs-db.js';
export { ProgressBar, formatDuration } from './progress.js';
export { formatRunTable } from './report.js';
