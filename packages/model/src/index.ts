export { ParamStore } from './params.js';
export {
  ARCH_NAMES,
  backbone,
  backboneFeatureDim,
  createNetwork,
  embed,
  l2Normalize,
  projector,
  updateRunningStats,
  type ArchName,
  type BackboneSpec,
  type ForwardContext,
  type NetworkSpec,
} from './resnet.js';
export { MemoryQueue } from './queue.js';
export {
  METHOD_NAMES,
  contrastiveLogits,
  grafitTargets,
  maskconTargets,
  sameLabelMask,
  sameLabelMaskHost,
  selfconTargets,
  softTargetCrossEntropy,
  softTargets,
  type MethodName,
  type TargetConfig,
} from './targets.js';
export { SgdMomentum, learningRateAt } from './sgd.js';
export { MaskConModel, type MocoConfig, type StepGradients } from './moco.js';
export { initBackend, BACKEND_ORDER, backendIdOf, currentBackend, type BackendName, type BackendInfo } from './backend.js';
export {
  registerWasmTrainingKernels,
  unregisterWasmTrainingKernels,
  wasmTrainingKernelsRegistered,
  WASM_TRAINING_KERNEL_NAMES,
  conv2DBackpropFilterWasm,
  conv2DBackpropInputWasm,
} from './kernels/index.js';
