export {
  DEFAULT_CONFIG,
  PRESETS,
  paperPreset,
  BACKEND_CHOICES,
  PIPELINE_KINDS,
  resolveWorkers,
  validateConfig,
  validateAgainstData,
  type TrainConfig,
  type BackendChoice,
  type PipelineKind,
} from './config.js';
export {
  TRAIN_OPTIONS,
  addTrainOptions,
  flagOf,
  parseTrainArgs,
  trainConfigFromOptions,
  type TrainOptionSpec,
} from './options.js';
export {
  train,
  resumeCommand,
  explainFailure,
  RECALL_KS,
  type TrainResult,
  type EpochLog,
  type TrainHooks,
} from './trainer.js';
export { RunsDb, type RunRow } from './runs-db.js';
export { ProgressBar, formatDuration } from './progress.js';
export { formatRunTable } from './report/run-table.js';
export {
  runDir,
  runFolder,
  runFolderAt,
  checkpointPath,
  reportFiles,
  saveTestEmbeddings,
  loadTestEmbeddings,
  type RunFolder,
  type TestEmbeddings,
} from './run-folder.js';
export { Replica, type StepInput, type BatchViews } from './replica.js';
export { createEngine, type Engine } from './engine.js';
export {
  LocalCollective,
  SharedCollective,
  allocateCollectiveBuffers,
  type Collective,
} from './parallel/collective.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  CHECKPOINT_FORMAT,
  type CheckpointMeta,
} from './checkpoint.js';
export {
  runSweep,
  parseSweepArgs,
  sweepCells,
  findFinishedRun,
  formatSweepMarkdown,
  type SweepSpec,
  type SweepRow,
  type SweepResult,
} from './sweep.js';
export { writeRunReport, type ReportOptions, type ReportResult } from './report/run-report.js';
export {
  RunLock,
  readRunLock,
  lockLiveness,
  effectiveStatus,
  STALE_HEARTBEAT_S,
  type RunLockInfo,
} from './run-lock.js';
export { StopRequest, TrainingInterrupted } from './stop-request.js';
