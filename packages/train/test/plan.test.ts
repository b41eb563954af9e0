import { describe, expect, it } from 'vitest';
import { formatPlan } from '../src/progress.js';

describe('run plan line', () => {
  it('states epochs × whole-batch images, the estimate at a measured rate, and the levers past a day', () => {
    // SOP split 2 train set size as an example: 59,551 images, batch 128 → 465 batches = 59,520
    expect(formatPlan(200, 59551, 128)).toBe(
      'plan: 200 epochs × 59,520 images = 11,904,000 images',
    );
    // 11,904,000 / 10 img/s = 1,190,400 s = 330 h 40 min
    expect(formatPlan(200, 59551, 128, 10)).toBe(
      'plan: 200 epochs × 59,520 images = 11,904,000 images; at 10.0 img/s the run takes about 330h40m\n' +
        'plan: over a day — shorten it with --backend tfjs-node-gpu, --epochs, --train-subset',
    );
    // 4 × 19,968 = 79,872 images at 400 img/s = 199.68 s: no levers
    expect(formatPlan(4, 20000, 128, 400)).toBe(
      'plan: 4 epochs × 19,968 images = 79,872 images; at 400.0 img/s the run takes about 3m20s',
    );
  });
});
