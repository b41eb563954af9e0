import * as tf from '@tensorflow/tfjs';
import { type Rng, streamRng } from '@maskcon/random';
import { ParamStore } from './params.js';
import { batchNormTrainFused } from './kernels/batch-norm.js';
import { kaimingConv, linearInit } from './init.js';

export type ArchName = 'resnet-mini' | 'resnet18' | 'resnet34' | 'resnet50';
export const ARCH_NAMES: readonly ArchName[] = ['resnet-mini', 'resnet18', 'resnet34', 'resnet50'];

/** 'small': 3×3 stride-1 conv, no max-pool (images ≤ 64 px, as the MaskCon code does);
 * 'standard': torchvision's 7×7 stride-2 conv + 3×3 stride-2 max-pool. */
export type StemName = 'small' | 'standard';
export const STEM_NAMES: readonly StemName[] = ['small', 'standard'];

/** The stem the paper uses for images of `px` pixels (the larger side): small for ≤ 64 px. */
export function stemForImageSize(px: number): StemName {
  return px <= 64 ? 'small' : 'standard';
}

export interface BackboneSpec {
  arch: ArchName;
  /** resnet-mini only: stem width w; stages have widths w, 2w, 4w. */
  width: number;
  inChannels: number;
  /** Default 'small'. Callers pick it with stemForImageSize(image size). */
  stem?: StemName;
  /** resnet18/34/50: width of the first stage (torchvision: 64); stages have b, 2b, 4b, 8b
   * (× 4 output channels for the Bottleneck of resnet50). */
  baseWidth?: number;
}

export interface NetworkSpec extends BackboneSpec {
  /** Projector hidden and output sizes (paper: 512 and 128). */
  projHidden: number;
  projDim: number;
  /** CoIns: number of (coarse) classes of the linear classifier on the backbone feature. */
  classifierClasses?: number;
}

/**
 * Forward-pass context. In training mode BatchNorm uses batch statistics computed over
 * `bnSplits` equal groups of the batch (MoCo's split/shuffle BN: each group behaves like one
 * GPU's share of the batch) and records the statistics so running averages can be updated
 * after the step.
 */
export interface ForwardContext {
  training: boolean;
  bnSplits: number;
  /** Filled in training mode: batch mean/var per BN layer (kept tensors, caller disposes). */
  bnStats?: { name: string; mean: tf.Tensor1D; variance: tf.Tensor1D; count: number }[];
  /**
   * Free each block's intermediates as soon as the block is done (only where no gradient is
   * taken, e.g. the key encoder): peak memory becomes a few activations instead of all of them.
   */
  releaseIntermediates?: boolean;
}

const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

function addConv(
  p: ParamStore,
  name: string,
  k: number,
  cin: number,
  cout: number,
  rng: Rng,
): void {
  p.addTrainable(`${name}.weight`, kaimingConv(k, cin, cout, rng));
}

function addBn(p: ParamStore, name: string, c: number): void {
  p.addTrainable(`${name}.weight`, tf.ones([c]));
  p.addTrainable(`${name}.bias`, tf.zeros([c]));
  p.addBuffer(`${name}.running_mean`, tf.zeros([c]));
  p.addBuffer(`${name}.running_var`, tf.ones([c]));
}

/** conv with PyTorch-style symmetric padding (k=3 → pad 1, k=1 → pad 0, k=7 → pad 3). */
function conv(p: ParamStore, name: string, x: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
  const w = p.get(`${name}.weight`) as tf.Variable<tf.Rank.R4>;
  const k = w.shape[0];
  return tf.conv2d(x, w, stride, (k - 1) / 2);
}

function batchNorm(p: ParamStore, name: string, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
  const gamma = p.get(`${name}.weight`);
  const beta = p.get(`${name}.bias`);
  const [n, h, w] = x.shape;
  if (!ctx.training) {
    const rm = p.get(`${name}.running_mean`);
    const rv = p.get(`${name}.running_var`);
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(rv, BN_EPS)));
    const shift = tf.sub(beta, tf.mul(rm, scale));
    return tf.add(tf.mul(x, scale), shift);
  }
  const g = ctx.bnSplits;
  if (n % g !== 0)
    throw new Error(
      `Batch of ${n} cannot be split into ${g} BatchNorm groups; use a batch size divisible by --bn-splits.`,
    );
  // Statistics per group over (N/G, H, W); one fused op with a closed-form backward keeps only
  // its input and per-channel statistics alive for the gradient (kernels/batch-norm.ts).
  const r = batchNormTrainFused(x, gamma, beta, BN_EPS, g);
  if (ctx.bnStats) {
    ctx.bnStats.push({
      name,
      mean: tf.keep(tf.mean(r.mean, 0) as tf.Tensor1D),
      variance: tf.keep(tf.mean(r.variance, 0) as tf.Tensor1D),
      count: (n / g) * h * w,
    });
  }
  tf.dispose([r.mean, r.variance]);
  return r.y;
}

/** torchvision BasicBlock: conv3×3(stride)–BN–ReLU–conv3×3–BN, plus identity or 1×1 conv+BN. */
function addBasicBlock(
  p: ParamStore,
  name: string,
  cin: number,
  cout: number,
  stride: number,
  rng: Rng,
): void {
  addConv(p, `${name}.conv1`, 3, cin, cout, rng);
  addBn(p, `${name}.bn1`, cout);
  addConv(p, `${name}.conv2`, 3, cout, cout, rng);
  addBn(p, `${name}.bn2`, cout);
  if (stride !== 1 || cin !== cout) {
    addConv(p, `${name}.downsample.0`, 1, cin, cout, rng);
    addBn(p, `${name}.downsample.1`, cout);
  }
}

/** torchvision Bottleneck (v1.5, stride on the 3×3 conv): 1×1 (cin→planes)–BN–ReLU–3×3(stride)–BN–ReLU–
 * 1×1 (planes→4·planes)–BN, plus identity or 1×1 conv(stride)+BN. */
function addBottleneck(
  p: ParamStore,
  name: string,
  cin: number,
  planes: number,
  stride: number,
  rng: Rng,
): void {
  const cout = planes * BOTTLENECK_EXPANSION;
  addConv(p, `${name}.conv1`, 1, cin, planes, rng);
  addBn(p, `${name}.bn1`, planes);
  addConv(p, `${name}.conv2`, 3, planes, planes, rng);
  addBn(p, `${name}.bn2`, planes);
  addConv(p, `${name}.conv3`, 1, planes, cout, rng);
  addBn(p, `${name}.bn3`, cout);
  if (stride !== 1 || cin !== cout) {
    addConv(p, `${name}.downsample.0`, 1, cin, cout, rng);
    addBn(p, `${name}.downsample.1`, cout);
  }
}

function shortcut(
  p: ParamStore,
  name: string,
  x: tf.Tensor4D,
  stride: 1 | 2,
  ctx: ForwardContext,
): tf.Tensor4D {
  return p.trainable.has(`${name}.downsample.0.weight`)
    ? batchNorm(p, `${name}.downsample.1`, conv(p, `${name}.downsample.0`, x, stride), ctx)
    : x;
}

function basicBlock(
  p: ParamStore,
  name: string,
  x: tf.Tensor4D,
  stride: 1 | 2,
  ctx: ForwardContext,
): tf.Tensor4D {
  let out = tf.relu(batchNorm(p, `${name}.bn1`, conv(p, `${name}.conv1`, x, stride), ctx));
  out = batchNorm(p, `${name}.bn2`, conv(p, `${name}.conv2`, out, 1), ctx);
  return tf.relu(tf.add(out, shortcut(p, name, x, stride, ctx))) as tf.Tensor4D;
}

function bottleneck(
  p: ParamStore,
  name: string,
  x: tf.Tensor4D,
  stride: 1 | 2,
  ctx: ForwardContext,
): tf.Tensor4D {
  let out = tf.relu(batchNorm(p, `${name}.bn1`, conv(p, `${name}.conv1`, x, 1), ctx));
  out = tf.relu(batchNorm(p, `${name}.bn2`, conv(p, `${name}.conv2`, out, stride), ctx));
  out = batchNorm(p, `${name}.bn3`, conv(p, `${name}.conv3`, out, 1), ctx);
  return tf.relu(tf.add(out, shortcut(p, name, x, stride, ctx))) as tf.Tensor4D;
}

export const BOTTLENECK_EXPANSION = 4;

interface Architecture {
  block: 'basic' | 'bottleneck';
  /** Blocks per stage. */
  layers: number[];
  /** Stage widths (`planes`); a Bottleneck stage outputs planes × 4 channels. */
  widths: number[];
}

function architecture(spec: BackboneSpec): Architecture {
  if (spec.arch === 'resnet-mini') {
    const w = spec.width;
    return { block: 'basic', layers: [1, 1, 1], widths: [w, 2 * w, 4 * w] };
  }
  const b = spec.baseWidth ?? 64;
  const widths = [b, 2 * b, 4 * b, 8 * b];
  switch (spec.arch) {
    case 'resnet18':
      return { block: 'basic', layers: [2, 2, 2, 2], widths };
    case 'resnet34':
      return { block: 'basic', layers: [3, 4, 6, 3], widths };
    case 'resnet50':
      return { block: 'bottleneck', layers: [3, 4, 6, 3], widths };
    default:
      throw new Error(
        `Unknown architecture ${String(spec.arch)}; known: ${ARCH_NAMES.join(', ')}.`,
      );
  }
}

/** Stride of block `j` of stage `i` (0-based): the first block of every stage but the first halves the size. */
export function blockStride(i: number, j: number): 1 | 2 {
  return i > 0 && j === 0 ? 2 : 1;
}

/** Pooled backbone feature size: 4w (resnet-mini), 8b (resnet18/34: 512), 32b (resnet50: 2048). */
export function backboneFeatureDim(spec: BackboneSpec): number {
  const a = architecture(spec);
  const last = a.widths[a.widths.length - 1];
  return a.block === 'bottleneck' ? last * BOTTLENECK_EXPANSION : last;
}

function validateSpec(spec: NetworkSpec): void {
  const posInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 0;
  if (!ARCH_NAMES.includes(spec.arch))
    throw new Error(`Unknown architecture ${String(spec.arch)}; known: ${ARCH_NAMES.join(', ')}.`);
  if (spec.arch === 'resnet-mini' && !posInt(spec.width))
    throw new Error(`--width must be a positive integer, got ${spec.width}.`);
  if (spec.baseWidth !== undefined && !posInt(spec.baseWidth))
    throw new Error(`baseWidth must be a positive integer, got ${spec.baseWidth}.`);
  if (!posInt(spec.inChannels))
    throw new Error(`inChannels must be a positive integer, got ${spec.inChannels}.`);
  if (spec.stem !== undefined && !STEM_NAMES.includes(spec.stem)) {
    throw new Error(
      `Unknown stem '${String(spec.stem)}'; expected one of ${STEM_NAMES.join(', ')}.`,
    );
  }
  if (!posInt(spec.projHidden) || !posInt(spec.projDim)) {
    throw new Error(
      `Projector sizes must be positive integers, got hidden ${spec.projHidden}, dim ${spec.projDim}.`,
    );
  }
  if (spec.classifierClasses !== undefined && !posInt(spec.classifierClasses)) {
    throw new Error(`classifierClasses must be a positive integer, got ${spec.classifierClasses}.`);
  }
}

/**
 * Creates the parameters of backbone + projector (+ CoIns classifier), named as torchvision's
 * state dict (`conv1.weight`, `layer1.0.downsample.1.running_mean`, …). Conv weights are HWIO,
 * Linear weights [in, out]. Init as torchvision: Kaiming-normal (fan_out) convs, BN weight 1
 * bias 0, PyTorch's default Linear init for projector and classifier.
 */
export function createNetwork(spec: NetworkSpec, seed: number): ParamStore {
  validateSpec(spec);
  const a = architecture(spec);
  const rng = streamRng('init', seed);
  const p = new ParamStore();
  const stemWidth = a.widths[0];
  addConv(
    p,
    'conv1',
    (spec.stem ?? 'small') === 'standard' ? 7 : 3,
    spec.inChannels,
    stemWidth,
    rng,
  );
  addBn(p, 'bn1', stemWidth);
  let cin = stemWidth;
  a.layers.forEach((blocks, i) => {
    const planes = a.widths[i];
    for (let j = 0; j < blocks; j++) {
      const name = `layer${i + 1}.${j}`;
      if (a.block === 'basic') {
        addBasicBlock(p, name, cin, planes, blockStride(i, j), rng);
        cin = planes;
      } else {
        addBottleneck(p, name, cin, planes, blockStride(i, j), rng);
        cin = planes * BOTTLENECK_EXPANSION;
      }
    }
  });
  const feat = backboneFeatureDim(spec);
  const l1 = linearInit(feat, spec.projHidden, rng);
  p.addTrainable('projector.0.weight', l1.weight);
  p.addTrainable('projector.0.bias', l1.bias);
  const l2 = linearInit(spec.projHidden, spec.projDim, rng);
  p.addTrainable('projector.2.weight', l2.weight);
  p.addTrainable('projector.2.bias', l2.bias);
  if (spec.classifierClasses !== undefined) {
    const c = linearInit(feat, spec.classifierClasses, rng);
    p.addTrainable('classifier.weight', c.weight);
    p.addTrainable('classifier.bias', c.bias);
  }
  return p;
}

/** True for backbone parameters/buffers (everything but the projector and classifier heads). */
export function isBackboneParam(name: string): boolean {
  return !name.startsWith('projector.') && !name.startsWith('classifier.');
}

/** The stem a parameter store was built with (from the shape of `conv1.weight`). */
export function stemOf(p: ParamStore): StemName {
  return p.get('conv1.weight').shape[0] === 7 ? 'standard' : 'small';
}

/**
 * Backbone: x N×H×W×C → pooled feature N×feat. The structure (stem, block type, stages) is read
 * from the parameter names and shapes, so key encoders and loaded weights need no spec.
 */
export function backbone(p: ParamStore, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
  let h: tf.Tensor4D;
  if (stemOf(p) === 'standard') {
    // 7×7/2 pad 3 conv, BN, ReLU, 3×3/2 max-pool with pad 1. tfjs' numeric max-pool padding
    // ignores the padded cells (like PyTorch's −∞ padding) on the cpu and wasm backends.
    const w = p.get('conv1.weight') as tf.Variable<tf.Rank.R4>;
    h = tf.relu(batchNorm(p, 'bn1', tf.conv2d(x, w, 2, 3), ctx));
    h = tf.maxPool(h, 3, 2, 1);
  } else {
    h = tf.relu(batchNorm(p, 'bn1', conv(p, 'conv1', x, 1), ctx));
  }
  const block = p.trainable.has('layer1.0.conv3.weight') ? bottleneck : basicBlock;
  for (let i = 0; p.trainable.has(`layer${i + 1}.0.conv1.weight`); i++) {
    for (let j = 0; p.trainable.has(`layer${i + 1}.${j}.conv1.weight`); j++) {
      if (ctx.releaseIntermediates) {
        const input = h;
        h = tf.tidy(() => block(p, `layer${i + 1}.${j}`, input, blockStride(i, j), ctx));
        if (input !== x) input.dispose();
      } else {
        h = block(p, `layer${i + 1}.${j}`, h, blockStride(i, j), ctx);
      }
    }
  }
  return tf.mean(h, [1, 2]) as tf.Tensor2D;
}

/** CoIns classifier: Linear(feat, C) on the backbone feature. f: N×feat → logits N×C. */
export function classifier(p: ParamStore, f: tf.Tensor2D): tf.Tensor2D {
  if (!p.trainable.has('classifier.weight'))
    throw new Error('This network has no classifier head; create it with classifierClasses set.');
  return tf.add(
    tf.matMul(f, p.get('classifier.weight') as tf.Tensor2D),
    p.get('classifier.bias'),
  ) as tf.Tensor2D;
}

/** Projector: Linear(feat, hidden)–ReLU–Linear(hidden, d). */
export function projector(p: ParamStore, f: tf.Tensor2D): tf.Tensor2D {
  const h = tf.relu(
    tf.add(tf.matMul(f, p.get('projector.0.weight') as tf.Tensor2D), p.get('projector.0.bias')),
  );
  return tf.add(
    tf.matMul(h, p.get('projector.2.weight') as tf.Tensor2D),
    p.get('projector.2.bias'),
  ) as tf.Tensor2D;
}

/** Row-wise L2 normalisation, safe for zero rows. */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D;
}

/** normalize(proj(backbone(x))): N×d unit vectors. */
export function embed(p: ParamStore, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
  return l2Normalize(projector(p, backbone(p, x, ctx)));
}

/** After a training step: running = (1−m)·running + m·batch (PyTorch BN, unbiased variance). */
export function updateRunningStats(
  p: ParamStore,
  stats: NonNullable<ForwardContext['bnStats']>,
): void {
  tf.tidy(() => {
    for (const s of stats) {
      const rm = p.get(`${s.name}.running_mean`);
      const rv = p.get(`${s.name}.running_var`);
      const unbiased = s.count > 1 ? tf.mul(s.variance, s.count / (s.count - 1)) : s.variance;
      rm.assign(tf.add(tf.mul(rm, 1 - BN_MOMENTUM), tf.mul(s.mean, BN_MOMENTUM)));
      rv.assign(tf.add(tf.mul(rv, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
    }
  });
  for (const s of stats) {
    s.mean.dispose();
    s.variance.dispose();
  }
}
