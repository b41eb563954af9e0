/**
 * torchvision's published ImageNet weights (`weights=IMAGENET1K_V1`, what `pretrained=True`
 * loads and what the MaskCon authors start from), fetched once into a cache and read by
 * `--pretrained imagenet`. Each file name carries the first 8 hex digits of its SHA-256, which
 * the download is verified against (as torch.hub's `check_hash` does).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type DownloadOptions, downloadVerified } from '@maskcon/datasets';

export interface ImagenetWeightsFile {
  readonly url: string;
  /** Leading hex digits of the file's SHA-256 (from its name). */
  readonly sha256Prefix: string;
}

/** One line per architecture: torchvision 0.14's ResNet*_Weights.IMAGENET1K_V1. */
export const IMAGENET_WEIGHTS = {
  resnet18: weightsFile('https://download.pytorch.org/models/resnet18-f37072fd.pth'),
  resnet34: weightsFile('https://download.pytorch.org/models/resnet34-b627a593.pth'),
  resnet50: weightsFile('https://download.pytorch.org/models/resnet50-0676ba61.pth'),
} as const satisfies Record<string, ImagenetWeightsFile>;

export type ImagenetArch = keyof typeof IMAGENET_WEIGHTS;

/** A published file: its SHA-256 prefix is the hex group at the end of its name. */
export function weightsFile(url: string): ImagenetWeightsFile {
  const m = /-([0-9a-f]{8,64})\.pth$/.exec(url);
  if (!m) throw new Error(`${url} does not end in -<8 hex digits of the SHA-256>.pth`);
  return { url, sha256Prefix: m[1] };
}

export function isImagenetArch(arch: string): arch is ImagenetArch {
  return Object.hasOwn(IMAGENET_WEIGHTS, arch);
}

/** Where fetched weights live: `$MASKCON_CACHE/weights`, else `~/.cache/maskcon/weights`. */
export function weightsCacheDir(): string {
  const cache = process.env.MASKCON_CACHE;
  return cache ? join(cache, 'weights') : join(homedir(), '.cache', 'maskcon', 'weights');
}

/** The cached file for `arch` (it may not exist yet). */
export function imagenetWeightsPath(arch: ImagenetArch, cacheDir = weightsCacheDir()): string {
  const { url } = IMAGENET_WEIGHTS[arch];
  return join(cacheDir, url.slice(url.lastIndexOf('/') + 1));
}

/** The command that fetches `arch`'s weights, for error messages. */
export function fetchCommand(arch: string): string {
  return `pnpm weights fetch ${arch}`;
}

/**
 * The cached ImageNet file for `arch`, or an error saying how to get it — checked before any
 * work starts (no model built, no data read).
 */
export function resolveImagenetWeights(arch: string, cacheDir = weightsCacheDir()): string {
  if (!isImagenetArch(arch)) {
    throw new Error(
      `--pretrained imagenet: torchvision publishes ImageNet weights for ${Object.keys(IMAGENET_WEIGHTS).join(', ')}, not for --arch ${arch}; choose one of those or pass a .pth/.safetensors file.`,
    );
  }
  const path = imagenetWeightsPath(arch, cacheDir);
  if (!existsSync(path)) {
    throw new Error(
      `--pretrained imagenet: the ${arch} ImageNet weights are not in the cache (${path}). Fetch them first with: ${fetchCommand(arch)}`,
    );
  }
  return path;
}

export interface FetchWeightsOptions extends Pick<DownloadOptions, 'onProgress' | 'timeoutMs'> {
  /** Default `weightsCacheDir()`. */
  weightsDir?: string;
  /** Replaces `https://download.pytorch.org/models` (a mirror, or a test server). */
  baseUrl?: string;
}

/**
 * Download `arch`'s weights into the cache (resuming a partial `.part`, verifying the SHA-256
 * prefix), or find them there already verified; returns the file.
 */
export async function fetchImagenetWeights(
  arch: ImagenetArch,
  options: FetchWeightsOptions = {},
): Promise<string> {
  return fetchWeightsFile(IMAGENET_WEIGHTS[arch], options);
}

/** `fetchImagenetWeights` for any published file named `<name>-<sha256 prefix>.pth`. */
export async function fetchWeightsFile(
  entry: ImagenetWeightsFile,
  options: FetchWeightsOptions = {},
): Promise<string> {
  const name = entry.url.slice(entry.url.lastIndexOf('/') + 1);
  const dir = options.weightsDir ?? weightsCacheDir();
  mkdirSync(dir, { recursive: true });
  const dest = join(dir, name);
  const base = options.baseUrl?.replace(/\/+$/, '');
  const url = base ? `${base}/${name}` : entry.url;
  await downloadVerified(
    url,
    dest,
    { algorithm: 'sha256', hex: entry.sha256Prefix },
    {
      onProgress: options.onProgress,
      timeoutMs: options.timeoutMs,
      manualHint: `(${entry.url}) and save it as ${dest}`,
    },
  );
  return dest;
}

/**
 * What `--pretrained` names, as a file: `imagenet` → the cached torchvision file for `arch`
 * (or an error with the fetch command), anything else → that file, which must exist.
 */
export function resolvePretrained(spec: string, arch: string): string {
  if (spec === 'imagenet') return resolveImagenetWeights(arch);
  if (!existsSync(spec)) {
    throw new Error(
      `--pretrained file ${spec} does not exist (give a .pth or .safetensors file, or 'imagenet' for torchvision's weights: ${fetchCommand(arch)}).`,
    );
  }
  return spec;
}
