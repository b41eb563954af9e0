export { DEFAULT_CONFIG, PRESETS, paperPreset, parseTrainArgs, resolveWorkers, validateConfig, validateAgainstData, type TrainConfig, type BackendChoice, type PipelineKind } from './config.js';
export { train, runDir, checkpointPath, saveTestEmbeddings, RECALL_KS, type TrainResult, type EpochLog, type TrainHooks } from './trainer.js';
export { RunsDb, type RunRow } from './runs-db.js';
export { ProgressBar, formatDuration } from './progress.js';
export { formatRunTable } from './report.js';
export { Replica, viewRng, View, type StepInput } from './replica.js';
export { createEngine, type Engine } from './engine.js';
export { LocalCollective, SharedCollective, allocateCollectiveBuffers, type Collective } from './parallel/collective.js';
export { saveCheckpoint, loadCheckpoint, CHECKPOINT_FORMAT, type CheckpointMeta } from './checkpoint.js';
