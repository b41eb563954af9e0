/**
 * `pnpm weights fetch resnet18|resnet34|resnet50 …` downloads torchvision's published ImageNet
 * weights into the cache (`$MASKCON_CACHE/weights` or `~/.cache/maskcon/weights`), resuming a
 * partial download and verifying the SHA-256 prefix in each file name; `pnpm weights list`
 * shows what is cached. `--pretrained imagenet` then reads the cached file for the `--arch`.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CliError,
  type Command,
  createCommand,
  createDownloadPrinter,
  Option,
  pathOption,
  runCli,
} from '@maskcon/datasets';
import {
  IMAGENET_WEIGHTS,
  fetchImagenetWeights,
  imagenetWeightsPath,
  weightsCacheDir,
  type ImagenetArch,
} from '@maskcon/model';

const ARCHS = Object.keys(IMAGENET_WEIGHTS) as ImagenetArch[];

/** The `pnpm weights` program; `print` gets result lines, `progress` download progress. */
export function buildWeightsProgram(
  print: (line: string) => void = (line) => console.log(line),
  progress: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Command {
  const program = createCommand(
    'pnpm weights',
    "torchvision's ImageNet weights, for --pretrained imagenet.",
  );
  const dirOption = () =>
    new Option('--dir <folder>', 'weights cache folder')
      .default(weightsCacheDir(), '$MASKCON_CACHE/weights, else ~/.cache/maskcon/weights')
      .argParser(pathOption('--dir'));

  program
    .command('fetch')
    .description(
      'download each architecture’s ImageNet weights (resuming a partial download), verify the SHA-256 prefix in the file name, or find them verified in the cache',
    )
    .argument('<arch...>', `one or more of ${ARCHS.join(', ')}`)
    .addOption(dirOption())
    .addOption(
      new Option('--base-url <url>', 'fetch from this mirror').default(
        undefined,
        'https://download.pytorch.org/models',
      ),
    )
    .action(async (archs: string[], opts: { dir: string; baseUrl?: string }) => {
      const unknown = archs.filter((a) => !(ARCHS as string[]).includes(a));
      if (unknown.length)
        throw new CliError(
          `torchvision publishes ImageNet weights for ${ARCHS.join(', ')}, not ${unknown.map((a) => `'${a}'`).join(', ')}.`,
        );
      for (const arch of archs as ImagenetArch[]) {
        const file = await fetchImagenetWeights(arch, {
          weightsDir: opts.dir,
          baseUrl: opts.baseUrl,
          onProgress: createDownloadPrinter(progress),
        });
        print(`${arch}: ${file} (SHA-256 ${IMAGENET_WEIGHTS[arch].sha256Prefix}… verified)`);
      }
    });

  program
    .command('list')
    .description('the architectures with published weights, and whether each is cached')
    .addOption(dirOption())
    .action((opts: { dir: string }) => {
      for (const arch of ARCHS) {
        const file = imagenetWeightsPath(arch, opts.dir);
        const state = existsSync(file)
          ? `cached, ${(statSync(file).size / 2 ** 20).toFixed(1)} MB`
          : `not cached — pnpm weights fetch ${arch}`;
        print(`${arch.padEnd(9)} ${IMAGENET_WEIGHTS[arch].url}  ${file}  (${state})`);
      }
    });
  return program;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(fileURLToPath(import.meta.url))) {
  runCli(async () => {
    await buildWeightsProgram().parseAsync();
  });
}
