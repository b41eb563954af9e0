import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Loading a layers model from disk with plain `@tensorflow/tfjs` in Node. That package only
 * knows http(s) URLs and browser storage (`file://` belongs to `@tensorflow/tfjs-node`, a
 * native build this project does not rely on), so this is the small IOHandler that reads
 * model.json and its weight files from a folder.
 */

/** An IOHandler for `model.json` (path or `file://` URL), for `tf.loadLayersModel(handler)`. */
export function fileModelHandler(modelJson: string): tf.io.IOHandler {
  const path = modelJson.startsWith('file://') ? fileURLToPath(modelJson) : modelJson;
  return {
    load: async () => {
      let json: {
        modelTopology: object;
        weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
        format?: string;
        generatedBy?: string;
        convertedBy?: string;
        userDefinedMetadata?: { [key: string]: object };
      };
      try {
        json = JSON.parse(readFileSync(path, 'utf8'));
      } catch (err) {
        throw new Error(
          `Cannot read the model at ${path} (${err instanceof Error ? err.message : String(err)}); give the model.json of an exported model folder.`,
        );
      }
      const dir = dirname(path);
      const buffers = json.weightsManifest.flatMap((g) =>
        g.paths.map((p) => {
          // Weight files sit next to model.json: a path from the manifest never leaves its folder.
          if (p.includes('/') || p.includes('\\') || p === '..' || p === '.')
            throw new Error(
              `${path} names weight file '${p}' outside its folder; refusing to read it.`,
            );
          return readFileSync(join(dir, p));
        }),
      );
      const all = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy ?? undefined,
        userDefinedMetadata: json.userDefinedMetadata,
      };
    },
  };
}

let registered = false;
/**
 * Lets `tf.loadLayersModel('file:///…/model.json')` work with plain `@tensorflow/tfjs` in
 * Node, as it does with tfjs-node. Idempotent.
 */
export function registerFileUrlLoader(): void {
  if (registered) return;
  registered = true;
  tf.io.registerLoadRouter((url: string | string[]) =>
    typeof url === 'string' && url.startsWith('file://')
      ? fileModelHandler(url)
      : (null as unknown as tf.io.IOHandler),
  );
}
