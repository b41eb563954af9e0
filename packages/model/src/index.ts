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
  selfconTargets,
  softTargetCrossEntropy,
  softTargets,
  type MethodName,
  type TargetConfig,
} from './targets.js';
export { SgdMomentum, learningRateAt } from './sgd.js';
export { MaskConModel, type MocoConfig } from './moco.js';
