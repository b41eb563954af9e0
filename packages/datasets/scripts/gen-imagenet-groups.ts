#!/usr/bin/env node
/**
 * Generate `src/sources/imagenet-groups.ts`: the ImageNet wnid → coarse group table (12 groups
 * of the seed's Table 3) derived from the WordNet 3.0 noun hierarchy.
 *
 *   apt-get install wordnet-base
 *   pnpm exec tsx packages/datasets/scripts/gen-imagenet-groups.ts path/to/map_clsloc.txt \
 *     [--wordnet /usr/share/wordnet/data.noun] [--out packages/datasets/src/sources/imagenet-groups.ts]
 *
 * Every ILSVRC class is a WordNet 3.0 noun synset (wnid = `n` + 8-digit offset). A class joins
 * the group of the first rule below whose synset is one of its ancestors (following hypernym
 * `@` and instance-hypernym `@i` pointers through every path, so a class with two parents is
 * checked against both). No per-class overrides are needed: with this order the group sizes
 * are exactly 61, 123, 59, 95, 60, 130, 70, 53, 105, 71, 93, 80, and the script refuses to
 * write a table whose counts differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const GROUP_NAMES = [
  'Invertebrate',
  'Domestic animal',
  'Bird',
  'Mammal',
  'Reptile/Aquatic vertebrate',
  'Device',
  'Vehicle',
  'Container',
  'Instrument',
  'Artifact',
  'Clothing',
  'Others',
] as const;

/** The seed's Table 3: fine classes per group. */
export const EXPECTED_GROUP_SIZES = [61, 123, 59, 95, 60, 130, 70, 53, 105, 71, 93, 80] as const;

/** Group 11 (Others) takes every class no rule matches (food, plants, fungi, scenes, people…). */
const OTHERS = 11;

/**
 * Rules in priority order: [group, WordNet 3.0 noun offset, lemma (for the reader and as a
 * check that the offset is the intended synset)]. Why the order matters:
 * - Animals first; domestic_animal (dogs and domestic cats) before mammal, and vertebrate last
 *   among animals so it collects what birds and mammals leave: reptiles, amphibians, fish.
 * - device before everything else man-made (a device that is also a container is a device).
 * - vehicle and public_transport (buses, trains) form Vehicle; a stretcher (a litter) is
 *   another conveyance and falls to Instrument.
 * - implement before container: pots, kettles and teapots are cooking utensils first.
 * - instrumentality before covering: curtains and rugs are furnishings, so Instrument.
 * - covering, fabric and adornment (jewellery) form Clothing; the rest of artifact is Artifact.
 */
export const GROUP_RULES: readonly (readonly [number, string, string])[] = [
  [0, '01905661', 'invertebrate'],
  [1, '01317541', 'domestic_animal'],
  [2, '01503061', 'bird'],
  [3, '01861778', 'mammal'],
  [4, '01471682', 'vertebrate'],
  [5, '03183080', 'device'],
  [6, '04524313', 'vehicle'],
  [6, '04019101', 'public_transport'],
  [8, '03563967', 'implement'],
  [7, '03094503', 'container'],
  [8, '03575240', 'instrumentality'],
  [10, '03122748', 'covering'],
  [10, '03309808', 'fabric'],
  [10, '02681518', 'adornment'],
  [9, '00021939', 'artifact'],
];

interface NounSynset {
  readonly lemmas: readonly string[];
  readonly hypernyms: readonly string[];
}

/** Parse WordNet's `data.noun`: `offset lex_filenum ss_type w_cnt (word lex_id)… p_cnt (sym offset pos src/tgt)… | gloss`. */
export function parseWordNetNouns(text: string, path: string): Map<string, NounSynset> {
  const synsets = new Map<string, NounSynset>();
  const lines = text.split('\n');
  lines.forEach((line, lineIndex) => {
    if (line.length === 0 || line.startsWith('  ')) return; // licence header lines start with two spaces
    const fields = line.split(' ');
    const fail = (why: string): never => {
      throw new Error(`${path} line ${lineIndex + 1}: ${why}; is this WordNet 3.0's data.noun?`);
    };
    const offset = fields[0];
    if (!/^\d{8}$/.test(offset)) fail(`synset offset '${offset}' is not 8 digits`);
    const wordCount = Number.parseInt(fields[3], 16);
    if (!Number.isInteger(wordCount) || wordCount < 1)
      fail(`word count '${fields[3]}' is not a hex number`);
    const lemmas: string[] = [];
    for (let i = 0; i < wordCount; i++) lemmas.push(fields[4 + 2 * i]);
    let k = 4 + 2 * wordCount;
    const pointerCount = Number.parseInt(fields[k], 10);
    if (!Number.isInteger(pointerCount)) fail(`pointer count '${fields[k]}' is not a number`);
    k += 1;
    const hypernyms: string[] = [];
    for (let i = 0; i < pointerCount; i++, k += 4) {
      const [symbol, target, pos] = [fields[k], fields[k + 1], fields[k + 2]];
      if (pos === undefined) fail('ends inside its pointer list');
      if ((symbol === '@' || symbol === '@i') && pos === 'n') hypernyms.push(target);
    }
    synsets.set(offset, { lemmas, hypernyms });
  });
  return synsets;
}

/** Parse `map_clsloc.txt` lines `wnid index name`; returns wnids in label order (index 1..n). */
export function parseClassList(text: string, path: string): string[] {
  const wnids: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const [wnid, index] = line.split(/\s+/);
    if (!/^n\d{8}$/.test(wnid) || Number(index) !== wnids.length + 1) {
      throw new Error(
        `${path} line ${i + 1}: expected 'nXXXXXXXX ${wnids.length + 1} name', got '${line}'.`,
      );
    }
    wnids.push(wnid);
  });
  return wnids;
}

/** Group of every wnid by the first matching rule. */
export function assignGroups(
  wnids: readonly string[],
  synsets: ReadonlyMap<string, NounSynset>,
): Map<string, number> {
  for (const [, offset, lemma] of GROUP_RULES) {
    const synset = synsets.get(offset);
    if (!synset || !synset.lemmas.includes(lemma)) {
      throw new Error(
        `WordNet synset ${offset} is not '${lemma}'; the rules are written for WordNet 3.0.`,
      );
    }
  }
  const memo = new Map<string, ReadonlySet<string>>();
  const ancestors = (offset: string): ReadonlySet<string> => {
    const known = memo.get(offset);
    if (known) return known;
    const synset = synsets.get(offset);
    if (!synset)
      throw new Error(`WordNet has no noun synset ${offset}; the class list needs WordNet 3.0.`);
    const all = new Set<string>([offset]);
    for (const parent of synset.hypernyms) for (const a of ancestors(parent)) all.add(a);
    memo.set(offset, all);
    return all;
  };
  const groups = new Map<string, number>();
  for (const wnid of wnids) {
    const up = ancestors(wnid.slice(1));
    const rule = GROUP_RULES.find(([, offset]) => up.has(offset));
    groups.set(wnid, rule ? rule[0] : OTHERS);
  }
  return groups;
}

function render(
  groups: ReadonlyMap<string, number>,
  synsets: ReadonlyMap<string, NounSynset>,
): string {
  const sorted = [...groups].sort(([a], [b]) => (a < b ? -1 : 1));
  const ruleLines = GROUP_RULES.map(
    ([g, offset, lemma]) =>
      ` *   ${String(g).padStart(2)} ${GROUP_NAMES[g].padEnd(26)} ← n${offset} ${lemma}`,
  );
  return `// Generated by packages/datasets/scripts/gen-imagenet-groups.ts from WordNet 3.0 (Debian wordnet-base).
// Do not edit by hand: change the rules in the script and re-run it.
/**
 * ImageNet (ILSVRC-2012) class → coarse group, 12 groups with the class counts of the seed's
 * Table 3. A class belongs to the group of the first rule (in this order) whose synset is one
 * of its WordNet ancestors; classes no rule matches are ${GROUP_NAMES[OTHERS]} (${OTHERS}).
${ruleLines.join('\n')}
 */
export const IMAGENET_GROUP_NAMES = ${JSON.stringify(GROUP_NAMES)} as const;

/** wnid → group id (0..11), sorted by wnid; the comment is the synset's first lemma. */
export const IMAGENET_GROUP_OF_WNID: Readonly<Record<string, number>> = Object.freeze({
${sorted.map(([wnid, g]) => `  ${wnid}: ${g}, // ${synsets.get(wnid.slice(1))?.lemmas[0] ?? ''}`).join('\n')}
});
`;
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      wordnet: { type: 'string', default: '/usr/share/wordnet/data.noun' },
      out: { type: 'string' },
    },
  });
  if (positionals.length !== 1) {
    throw new Error(
      'Usage: gen-imagenet-groups.ts path/to/map_clsloc.txt [--wordnet data.noun] [--out file.ts]',
    );
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const out = resolve(values.out ?? join(here, '..', 'src', 'sources', 'imagenet-groups.ts'));
  const wnids = parseClassList(readFileSync(positionals[0], 'utf8'), positionals[0]);
  if (wnids.length !== 1000)
    throw new Error(`${positionals[0]} lists ${wnids.length} classes; ILSVRC-2012 has 1000.`);
  const synsets = parseWordNetNouns(readFileSync(values.wordnet, 'latin1'), values.wordnet);
  const groups = assignGroups(wnids, synsets);
  const sizes = GROUP_NAMES.map((_, g) => [...groups.values()].filter((x) => x === g).length);
  if (sizes.some((n, g) => n !== EXPECTED_GROUP_SIZES[g])) {
    throw new Error(
      `Group sizes ${sizes.join(',')} differ from Table 3 (${EXPECTED_GROUP_SIZES.join(',')}); not writing ${out}.`,
    );
  }
  writeFileSync(out, render(groups, synsets));
  console.log(`wrote ${out}: ${groups.size} classes, group sizes ${sizes.join(', ')}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
