import type { ImageU8 } from '@maskcon/datasets';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  applyAutoAugmentOp,
  applyColorJitter,
  gaussianBlur,
  grayscale,
  MAGNITUDES,
  perspective,
  perspectiveBilinear,
  perspectiveCoefficients,
  type AutoAugmentOp,
  type Corners,
  type PerspectiveCoefficients,
} from '../src/index.js';
import { hflip, resizedCrop, resizedShape } from '../src/transforms.js';
import { resizeBilinear } from '../src/resample.js';
import { toNormalizedFloat } from '../src/normalize.js';

/*
 * Replays test/fixtures/pil-reference.json (written by scripts/gen-pil-reference.py with
 * Pillow 9.4 / torchvision 0.14): for each deterministic operation and fixed parameters,
 * our output must match PIL's within the tolerance stated per operation below.
 */

interface Case {
  op: string;
  input: string;
  params: Record<string, unknown>;
  output: string;
  coefficients?: number[];
  /** 'float32': output holds little-endian float32 values (HWC), not bytes. */
  dtype?: 'float32';
}
interface Fixture {
  meta: Record<string, string>;
  inputs: Record<string, { height: number; width: number; channels: number; data: string }>;
  cases: Case[];
}

const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/pil-reference.json', import.meta.url), 'utf8'),
) as Fixture;
const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));
const inputs: Record<string, ImageU8> = Object.fromEntries(
  Object.entries(fixture.inputs).map(([k, v]) => [
    k,
    { data: bytes(v.data), height: v.height, width: v.width, channels: v.channels },
  ]),
);

/** Max |ours − PIL| allowed per value, and the share of values allowed to differ at all. */
const TOLERANCE: Record<string, { maxDiff: number; maxMismatchFraction: number; why: string }> = {
  grayscale: { maxDiff: 0, maxMismatchFraction: 0, why: 'integer luma' },
  brightness: { maxDiff: 0, maxMismatchFraction: 0, why: 'float32 blend reproduced' },
  contrast: { maxDiff: 0, maxMismatchFraction: 0, why: 'float32 blend reproduced' },
  saturation: { maxDiff: 0, maxMismatchFraction: 0, why: 'float32 blend reproduced' },
  hue: { maxDiff: 0, maxMismatchFraction: 0, why: 'Pillow HSV round trip reproduced' },
  colorJitter: { maxDiff: 0, maxMismatchFraction: 0, why: 'composition of exact steps' },
  gaussianBlur: { maxDiff: 0, maxMismatchFraction: 0, why: 'fixed-point box blur reproduced' },
  perspectiveWarp: {
    maxDiff: 0,
    maxMismatchFraction: 0,
    why: 'same coefficients, same double arithmetic',
  },
  // torchvision 0.14 solves for the coefficients in float32 (lstsq); we solve in float64 and
  // round to float32, so a sample point can land on the other side of a pixel boundary (or
  // of the image border, where the value jumps to the fill): a few values differ, by any amount.
  perspective: {
    maxDiff: 255,
    maxMismatchFraction: 0.02,
    why: 'coefficients solved in float64 vs float32',
  },
  autoaugment: { maxDiff: 0, maxMismatchFraction: 0, why: 'Pillow arithmetic reproduced' },
  resizedCrop: {
    maxDiff: 0,
    maxMismatchFraction: 0,
    why: "Pillow's fixed-point antialiased bilinear reproduced",
  },
  resize: {
    maxDiff: 0,
    maxMismatchFraction: 0,
    why: "Pillow's fixed-point antialiased bilinear reproduced",
  },
  hflip: { maxDiff: 0, maxMismatchFraction: 0, why: 'a permutation' },
  toTensorNormalize: {
    maxDiff: 0,
    maxMismatchFraction: 0,
    why: "float32 values equal torchvision's (x/255 − mean)/std",
  },
};

const stats = new Map<
  string,
  { cases: number; maxDiff: number; mismatched: number; values: number }
>();

function ours(c: Case): ImageU8 {
  const img = inputs[c.input];
  const p = c.params;
  switch (c.op) {
    case 'grayscale':
      return grayscale(img);
    case 'brightness':
      return adjustBrightness(img, p.factor as number);
    case 'contrast':
      return adjustContrast(img, p.factor as number);
    case 'saturation':
      return adjustSaturation(img, p.factor as number);
    case 'hue':
      return adjustHue(img, p.factor as number);
    case 'colorJitter':
      return applyColorJitter(img, {
        order: p.order as number[],
        brightness: p.brightness as number,
        contrast: p.contrast as number,
        saturation: p.saturation as number,
        hue: p.hue as number,
      });
    case 'gaussianBlur':
      return gaussianBlur(img, p.sigma as number);
    case 'perspective':
      return perspective(img, p.startpoints as Corners, p.endpoints as Corners, 0);
    case 'perspectiveWarp':
      return perspectiveBilinear(img, p.coefficients as unknown as PerspectiveCoefficients, 0);
    case 'resizedCrop':
      return resizedCrop(
        img,
        p.top as number,
        p.left as number,
        p.height as number,
        p.width as number,
        p.size as number,
      );
    case 'resize': {
      const [h, w] = resizedShape(img.height, img.width, p.size as number);
      return resizeBilinear(img, h, w);
    }
    case 'hflip':
      return hflip(img);
    case 'autoaugment': {
      const op = p.op as AutoAugmentOp;
      // Our magnitude table must give the value the generator used (numpy linspace).
      expect(MAGNITUDES[op][p.level as number]).toBe(p.magnitude);
      return applyAutoAugmentOp(img, op, p.magnitude as number, p.sign as 1 | -1, 128);
    }
    default:
      throw new Error(`fixture has an unknown op ${c.op}`);
  }
}

describe(`agreement with PIL/torchvision (${fixture.meta.pillow} / ${fixture.meta.torchvision})`, () => {
  const ops = [...new Set(fixture.cases.map((c) => c.op))];
  for (const op of ops) {
    it(`${op} matches PIL within tolerance`, () => {
      const tol = TOLERANCE[op];
      const s = { cases: 0, maxDiff: 0, mismatched: 0, values: 0 };
      for (const c of fixture.cases.filter((x) => x.op === op)) {
        const raw = bytes(c.output);
        const expected =
          c.dtype === 'float32'
            ? new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4)
            : raw;
        const got =
          c.dtype === 'float32'
            ? {
                data: toNormalizedFloat(
                  inputs[c.input],
                  c.params.mean as number[],
                  c.params.std as number[],
                ),
              }
            : ours(c);
        expect(got.data.length, `${op} ${c.input} ${JSON.stringify(c.params)}`).toBe(
          expected.length,
        );
        let caseMax = 0;
        let caseMismatch = 0;
        for (let i = 0; i < expected.length; i++) {
          const d = Math.abs(got.data[i] - expected[i]);
          if (d > 0) caseMismatch++;
          if (d > caseMax) caseMax = d;
        }
        s.cases++;
        s.values += expected.length;
        s.mismatched += caseMismatch;
        s.maxDiff = Math.max(s.maxDiff, caseMax);
        expect(
          caseMax,
          `${op} on ${c.input} with ${JSON.stringify(c.params)}: max difference`,
        ).toBeLessThanOrEqual(tol.maxDiff);
        expect(
          caseMismatch / expected.length,
          `${op} on ${c.input} with ${JSON.stringify(c.params)}: mismatched share`,
        ).toBeLessThanOrEqual(tol.maxMismatchFraction);
      }
      stats.set(op, s);
    });
  }
  it('perspective coefficients agree with torchvision to float32 precision', () => {
    for (const c of fixture.cases.filter((x) => x.op === 'perspective')) {
      const coeffs = perspectiveCoefficients(
        c.params.startpoints as Corners,
        c.params.endpoints as Corners,
      );
      c.coefficients!.forEach((v, i) => expect(coeffs[i]).toBeCloseTo(v, 4));
    }
  });
  afterAll(() => {
    const rows = [...stats.entries()].map(
      ([op, s]) =>
        `${op.padEnd(16)} cases ${String(s.cases).padStart(3)}  max |diff| ${s.maxDiff}  differing values ${s.mismatched}/${s.values}`,
    );
    console.log(`PIL agreement per operation:\n${rows.join('\n')}`);
  });
});
