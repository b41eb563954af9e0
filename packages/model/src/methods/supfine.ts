import type { Method } from './method.js';
import { grafitTargets } from './grafit.js';

/** SupFINE (upper bound): Grafit's supervised target with w = 1, built from the fine labels. */
export const supfine: Method = {
  name: 'supfine',
  label: 'SupFINE',
  description: 'supervised upper bound: every same-fine-label queue entry is a positive',
  labels: 'fine',
  needsClassifier: false,
  usesMask: true,
  hyperparameters: [],
  targets: ({ mask }) => grafitTargets(mask!, 1),
};
