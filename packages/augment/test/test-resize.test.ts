import type { ImageU8 } from '@maskcon/datasets';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { makePipeline, Rng } from '../src/index.js';

/*
 * Replays test/fixtures/test-resize-reference.json (scripts/gen-test-resize-reference.py,
 * torchvision 0.14 on PIL images): the test pipeline is Resize([size, size]) → ToTensor →
 * Normalize, as the authors' evaluation code runs it, for any aspect ratio.
 */
interface Case {
  name: string;
  height: number;
  width: number;
  channels: 1 | 3;
  size: number;
  mean: number[];
  std: number[];
  input: string;
  resized: string;
  normalized: string;
}
const ref = JSON.parse(
  readFileSync(new URL('./fixtures/test-resize-reference.json', import.meta.url), 'utf8'),
) as { cases: Case[] };

const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

describe('test pipeline = torchvision Resize([size, size]) → ToTensor → Normalize', () => {
  for (const c of ref.cases) {
    it(`${c.name}: the same bytes and floats as torchvision, into a size×size batch slot`, () => {
      const img: ImageU8 = {
        height: c.height,
        width: c.width,
        channels: c.channels,
        data: bytes(c.input),
      };
      const test = makePipeline('test', { size: c.size, mean: c.mean, std: c.std });
      const resized = test.transform(img, new Rng(0));
      expect([resized.height, resized.width, resized.channels]).toEqual([
        c.size,
        c.size,
        c.channels,
      ]);
      expect(Buffer.from(resized.data).equals(Buffer.from(bytes(c.resized)))).toBe(true);

      const slot = c.size * c.size * c.channels;
      const batch = new Float32Array(3 * slot).fill(Number.NaN);
      test(img, new Rng(0), batch, slot); // the middle slot of an NHWC batch of 3
      const b = bytes(c.normalized);
      const want = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      let maxErr = 0;
      for (let i = 0; i < slot; i++) maxErr = Math.max(maxErr, Math.abs(batch[slot + i] - want[i]));
      expect(maxErr).toBeLessThan(1e-6);
      expect(Number.isNaN(batch[0]) && Number.isNaN(batch[2 * slot])).toBe(true); // neighbours untouched
    });
  }
});
