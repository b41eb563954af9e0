import type { ImageU8 } from '@maskcon/datasets';
import {
  adjustBrightness,
  adjustContrast,
  adjustSaturation,
  adjustSharpness,
  autocontrast,
  equalize,
  invert,
  posterize,
  solarize,
} from './color.js';
import { affineBicubic, affineNearest, rotate } from './geometry.js';
import type { Rng } from '@maskcon/random';
import type { Transform } from './transforms.js';

/*
 * AutoAugment's CIFAR-10 policy as the widely used `CIFAR10Policy` implements it on PIL
 * images: 25 sub-policies, each two (operation, probability, magnitude level) steps; one
 * sub-policy is chosen uniformly per image and each of its steps runs with its probability.
 * Level k ∈ 0..9 indexes a 10-point linear table per operation. Shear, translate and the
 * four enhance operations pick a random sign; rotate does not (that implementation always
 * turns counter-clockwise). Geometric operations fill uncovered pixels with grey 128.
 */

export type AutoAugmentOp =
  | 'invert'
  | 'contrast'
  | 'rotate'
  | 'translateX'
  | 'translateY'
  | 'sharpness'
  | 'shearX'
  | 'shearY'
  | 'autocontrast'
  | 'equalize'
  | 'posterize'
  | 'color'
  | 'brightness'
  | 'solarize';

/** One step of a sub-policy: run `op` at level `level` with probability `p`. */
export interface PolicyStep {
  op: AutoAugmentOp;
  p: number;
  level: number;
}

const step = (op: AutoAugmentOp, p: number, level: number): PolicyStep => ({ op, p, level });

/** The 25 CIFAR-10 sub-policies (Cubuk et al. 2019, Appendix), in the usual order. */
export const CIFAR10_POLICY: readonly (readonly [PolicyStep, PolicyStep])[] = [
  [step('invert', 0.1, 7), step('contrast', 0.2, 6)],
  [step('rotate', 0.7, 2), step('translateX', 0.3, 9)],
  [step('sharpness', 0.8, 1), step('sharpness', 0.9, 3)],
  [step('shearY', 0.5, 8), step('translateY', 0.7, 9)],
  [step('autocontrast', 0.5, 8), step('equalize', 0.9, 2)],
  [step('shearY', 0.2, 7), step('posterize', 0.3, 7)],
  [step('color', 0.4, 3), step('brightness', 0.6, 7)],
  [step('sharpness', 0.3, 9), step('brightness', 0.7, 9)],
  [step('equalize', 0.6, 5), step('equalize', 0.5, 1)],
  [step('contrast', 0.6, 7), step('sharpness', 0.6, 5)],
  [step('color', 0.7, 7), step('translateX', 0.5, 8)],
  [step('equalize', 0.3, 7), step('autocontrast', 0.4, 8)],
  [step('translateY', 0.4, 3), step('sharpness', 0.2, 6)],
  [step('brightness', 0.9, 6), step('color', 0.2, 8)],
  [step('solarize', 0.5, 2), step('invert', 0.0, 3)],
  [step('equalize', 0.2, 0), step('autocontrast', 0.6, 0)],
  [step('equalize', 0.2, 8), step('equalize', 0.6, 4)],
  [step('color', 0.9, 9), step('equalize', 0.6, 6)],
  [step('autocontrast', 0.8, 4), step('solarize', 0.2, 8)],
  [step('brightness', 0.1, 3), step('color', 0.7, 0)],
  [step('solarize', 0.4, 5), step('autocontrast', 0.9, 3)],
  [step('translateY', 0.9, 9), step('translateY', 0.7, 9)],
  [step('autocontrast', 0.9, 2), step('solarize', 0.8, 3)],
  [step('equalize', 0.8, 8), step('invert', 0.1, 3)],
  [step('translateY', 0.7, 9), step('autocontrast', 0.9, 1)],
];

/** numpy `linspace(start, stop, 10)`: k·step + start, the last point exactly `stop`. */
function linspace10(start: number, stop: number): number[] {
  const d = (stop - start) / 9;
  return Array.from({ length: 10 }, (_, k) => (k === 9 ? stop : k * d + start));
}

/** Python's round-half-even on the few values posterize needs. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Magnitude per level (index 0..9) for each operation; the level-free operations have none. */
export const MAGNITUDES: Readonly<Record<AutoAugmentOp, readonly number[]>> = {
  shearX: linspace10(0, 0.3),
  shearY: linspace10(0, 0.3),
  translateX: linspace10(0, 150 / 331),
  translateY: linspace10(0, 150 / 331),
  rotate: linspace10(0, 30),
  color: linspace10(0, 0.9),
  posterize: linspace10(8, 4).map(roundHalfEven),
  solarize: linspace10(256, 0),
  contrast: linspace10(0, 0.9),
  sharpness: linspace10(0, 0.9),
  brightness: linspace10(0, 0.9),
  autocontrast: new Array<number>(10).fill(0),
  equalize: new Array<number>(10).fill(0),
  invert: new Array<number>(10).fill(0),
};

/** Operations whose magnitude gets a random sign. */
export const SIGNED_OPS: ReadonlySet<AutoAugmentOp> = new Set<AutoAugmentOp>([
  'shearX',
  'shearY',
  'translateX',
  'translateY',
  'color',
  'contrast',
  'sharpness',
  'brightness',
]);

/** Grey fill for geometric operations, per channel. */
function grey(img: ImageU8, fill: number): number[] {
  return new Array<number>(img.channels).fill(fill);
}

/**
 * One AutoAugment operation with a given magnitude and sign (±1; ignored by unsigned ops),
 * exactly as the CIFAR10Policy lambdas call PIL.
 */
export function applyAutoAugmentOp(
  img: ImageU8,
  op: AutoAugmentOp,
  magnitude: number,
  sign: 1 | -1,
  fill = 128,
): ImageU8 {
  switch (op) {
    case 'shearX':
      return affineBicubic(img, [1, magnitude * sign, 0, 0, 1, 0], grey(img, fill));
    case 'shearY':
      return affineBicubic(img, [1, 0, 0, magnitude * sign, 1, 0], grey(img, fill));
    case 'translateX':
      return affineNearest(img, [1, 0, magnitude * img.width * sign, 0, 1, 0], grey(img, fill));
    case 'translateY':
      return affineNearest(img, [1, 0, 0, 0, 1, magnitude * img.height * sign], grey(img, fill));
    case 'rotate':
      return rotate(img, magnitude, grey(img, fill));
    case 'color':
      return adjustSaturation(img, 1 + magnitude * sign);
    case 'posterize':
      return posterize(img, magnitude);
    case 'solarize':
      return solarize(img, magnitude);
    case 'contrast':
      return adjustContrast(img, 1 + magnitude * sign);
    case 'sharpness':
      return adjustSharpness(img, 1 + magnitude * sign);
    case 'brightness':
      return adjustBrightness(img, 1 + magnitude * sign);
    case 'autocontrast':
      return autocontrast(img);
    case 'equalize':
      return equalize(img);
    case 'invert':
      return invert(img);
    default:
      throw new Error(`Unknown AutoAugment operation '${op as string}'.`);
  }
}

/** What one CIFAR10Policy call drew: the sub-policy and, per step, whether it ran and its sign. */
export interface PolicyDraw {
  policy: number;
  applied: [boolean, boolean];
  signs: [1 | -1, 1 | -1];
}

/** Draw a sub-policy, then per step: run? (probability p) and, if it runs and is signed, a fair sign. */
export function samplePolicy(rng: Rng): PolicyDraw {
  const policy = rng.int(CIFAR10_POLICY.length);
  const draw: PolicyDraw = { policy, applied: [false, false], signs: [1, 1] };
  for (let s = 0; s < 2; s++) {
    const st = CIFAR10_POLICY[policy][s];
    draw.applied[s] = rng.next() < st.p;
    if (draw.applied[s] && SIGNED_OPS.has(st.op)) draw.signs[s] = rng.next() < 0.5 ? -1 : 1;
  }
  return draw;
}

/** Run a drawn sub-policy on `img`. */
export function applyPolicy(img: ImageU8, draw: PolicyDraw, fill = 128): ImageU8 {
  let out = img;
  for (let s = 0; s < 2; s++) {
    if (!draw.applied[s]) continue;
    const st = CIFAR10_POLICY[draw.policy][s];
    out = applyAutoAugmentOp(out, st.op, MAGNITUDES[st.op][st.level], draw.signs[s], fill);
  }
  return out;
}

/** `CIFAR10Policy(fillcolor=(128, 128, 128))` as a seeded Transform. */
export function cifar10Policy(fill = 128): Transform {
  return (img, rng) => applyPolicy(img, samplePolicy(rng), fill);
}
