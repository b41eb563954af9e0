#!/usr/bin/env node
// Install step of @maskcon/native: compiles the oneDNN addon with node-gyp. It never fails the
// install: when the platform, oneDNN's headers or the compiler are missing, or compilation fails,
// it writes the reason in one line to build/unavailable.txt (read by the loader, which then
// reports it and the project runs on its wasm kernels) and exits 0.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const reasonFile = path.join(root, 'build', 'unavailable.txt');
const require = createRequire(import.meta.url);

function unavailable(reason) {
  mkdirSync(path.dirname(reasonFile), { recursive: true });
  writeFileSync(reasonFile, `${reason}\n`);
  console.log(`@maskcon/native: not built — ${reason}`);
  process.exit(0);
}

if (process.env.MASKCON_NATIVE === '0') unavailable('skipped at install (MASKCON_NATIVE=0)');
if (process.platform !== 'linux' || process.arch !== 'x64')
  unavailable(`oneDNN addon is built only on linux-x64, not ${process.platform}-${process.arch}`);
if (!existsSync('/usr/include/oneapi/dnnl/dnnl.hpp'))
  unavailable(
    "oneDNN headers not found (/usr/include/oneapi/dnnl/dnnl.hpp); install Debian's libdnnl-dev (scripts/install.sh does) and run `pnpm install` again",
  );

try {
  require.resolve('node-addon-api');
} catch {
  unavailable(
    'node-addon-api is not installed (a dependency of @maskcon/native); run `pnpm install` again',
  );
}
// node-gyp: this repository's own (a devDependency), else the one npm and pnpm put on the PATH
// of install scripts, so that installing the published package needs no node-gyp dependency.
let gyp = [];
try {
  gyp = [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
} catch {
  if (spawnSync('node-gyp', ['--version'], { encoding: 'utf8' }).status !== 0)
    unavailable(
      'node-gyp is neither installed nor on the PATH of the install script (npm and pnpm provide one); install node-gyp and run the install again',
    );
  gyp = ['node-gyp'];
}
rmSync(reasonFile, { force: true });
const r = spawnSync(gyp[0], [...gyp.slice(1), 'rebuild', '--release'], {
  cwd: root,
  encoding: 'utf8',
});
if (r.status !== 0) {
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  writeFileSync(path.join(root, 'build-error.log'), log);
  const firstError = log.split('\n').find((l) => /error/i.test(l)) ?? `exit ${r.status}`;
  unavailable(
    `compiling the addon failed (${firstError.trim().slice(0, 200)}); full log in packages/native/build-error.log`,
  );
}
console.log('@maskcon/native: built build/Release/maskcon_native.node');
