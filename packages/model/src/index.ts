export { ParamStore } from './params.js';
export {
  ARCH_NAMES,
  backbone,
  backboneFeatureDim,
  BOTTLENECK_EXPANSION,
  classifier,
  createNetwork,
  isBackboneParam,
  STEM_NAMES,
  stemForImageSize,
  stemOf,
  embed,
  l2Normalize,
  projector,
  updateRunningStats,
  type ArchName,
  type BackboneSpec,
  type ForwardContext,
  type NetworkSpec,
  type StemName,
} from './resnet.js';
export { MemoryQueue } from './queue.js';
export { firstNonFinite, describeNonFinite, type NonFinite } from './finite.js';
export {
  METHODS,
  METHOD_NAMES,
  coinsLoss,
  contrastiveLogits,
  grafitTargets,
  lossWithTargets,
  maskconTargets,
  methodLoss,
  methodOf,
  methodTargets,
  mixWithPositive,
  positiveOnly,
  sameLabelMask,
  sameLabelMaskHost,
  selfconTargets,
  softTargetCrossEntropy,
  type LossParams,
  type Method,
  type MethodName,
  type MethodParams,
  type QueueView,
  type TargetInputs,
} from './methods/index.js';
export { SgdMomentum, learningRateAt } from './sgd.js';
export {
  MaskConModel,
  SINGLE_REPLICA,
  inversePermutation,
  type MocoConfig,
  type ReplicaGroup,
  type StepBatch,
  type StepGradients,
} from './moco.js';
export {
  initBackend,
  BACKEND_ORDER,
  backendIdOf,
  currentBackend,
  type BackendName,
  type BackendInfo,
  backendLine,
  type BackendOptions,
} from './backend.js';
export {
  loadNative,
  loadNativeMemory,
  type NativeKernels,
  type NativeLoad,
  type NativeMemoryLoad,
} from '@maskcon/native';
export {
  registerNativeKernels,
  unregisterNativeKernels,
  nativeKernelsRegistered,
  nativeImplementations,
  NATIVE_KERNEL_NAMES,
} from './kernels/native.js';
export {
  registerWasmTrainingKernels,
  unregisterWasmTrainingKernels,
  wasmTrainingKernelsRegistered,
  WASM_TRAINING_KERNEL_NAMES,
  conv2DBackpropFilterWasm,
  conv2DBackpropInputWasm,
} from './kernels/index.js';
export {
  SAFETENSORS_DTYPES,
  SAFETENSORS_MAX_HEADER_BYTES,
  SafetensorsError,
  encodeSafetensors,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
  f16ToF32,
  f32ToF16,
  bf16ToF32,
  f32ToBf16,
  type SafetensorsDtype,
  type SafetensorsFile,
  type SafetensorsInput,
  type SafetensorsTensor,
} from './safetensors.js';
export {
  PretrainedMismatchError,
  loadPretrainedBackbone,
  checkPretrainedFile,
  readStateDict,
  saveBackboneSafetensors,
  torchvisionBackboneState,
  type LoadPretrainedOptions,
  type LoadPretrainedReport,
} from './pretrained.js';
export {
  checkTorchStateDict,
  readTorchStateDict,
  PthError,
  type StateDictTensor,
} from './pth.js';
export {
  IMAGENET_WEIGHTS,
  fetchCommand,
  fetchImagenetWeights,
  fetchWeightsFile,
  weightsFile,
  type FetchWeightsOptions,
  imagenetWeightsPath,
  isImagenetArch,
  resolveImagenetWeights,
  resolvePretrained,
  weightsCacheDir,
  type ImagenetArch,
  type ImagenetWeightsFile,
} from './imagenet-weights.js';
export {
  buildBackboneLayersModel,
  exportBackbone,
  loadBackbone,
  type ExportMetadata,
} from './export.js';
export { installLeanGradients } from './lean-gradients.js';
export { fileModelHandler, registerFileUrlLoader } from './file-io.js';
export {
  layersModelToOnnx,
  readOnnxMetadata,
  writeOnnxModel,
  ONNX_INPUT_NAME,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  ONNX_OUTPUT_NAME,
} from './onnx/export.js';
export { decodeOnnxModel, ONNX_MAX_BYTES, type DecodedOnnxModel } from '@maskcon/onnx';
