/**
 * The one CLI kit of the project: every command (`pnpm datasets:*`, `train`, `runs`, `sweep`,
 * `report`, `eval`, `bench`) builds its parser with `commander` through these helpers, so help,
 * nearest-flag suggestions, numeric validation, error printing and EPIPE handling behave alike.
 */
import { existsSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';

export { Command, CommanderError, Option };

/** A user-facing error: printed as `error: <message>` without a stack trace. */
export class CliError extends Error {
  override name = 'CliError';
}

const show = (raw: string) => JSON.stringify(raw);

export interface NumberRange {
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** Largest allowed value (inclusive). */
  max?: number;
  /** Smallest value that is NOT allowed; values must be strictly greater. */
  above?: number;
}

function rangeText(r: NumberRange): string {
  const parts: string[] = [];
  if (r.above !== undefined) parts.push(`> ${r.above}`);
  if (r.min !== undefined) parts.push(`≥ ${r.min}`);
  if (r.max !== undefined) parts.push(`≤ ${r.max}`);
  return parts.join(' and ');
}

function checkRange(flag: string, raw: string, v: number, r: NumberRange, what: string): number {
  const bad =
    (r.min !== undefined && v < r.min) ||
    (r.max !== undefined && v > r.max) ||
    (r.above !== undefined && !(v > r.above));
  if (bad) throw new CliError(`${flag} takes ${what} ${rangeText(r)}, got ${show(raw)}.`);
  return v;
}

/** A commander argument parser for an integer option; the error names the flag and the value. */
export function intOption(flag: string, range: NumberRange = {}): (raw: string) => number {
  return (raw) => {
    const v = /^[-+]?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(v)) {
      const what = range.min !== undefined ? ` ${rangeText(range)}` : '';
      throw new CliError(`${flag} takes an integer${what}, got ${show(raw)}.`);
    }
    return checkRange(flag, raw, v, range, 'an integer');
  };
}

/** A commander argument parser for a finite number option. */
export function numberOption(flag: string, range: NumberRange = {}): (raw: string) => number {
  return (raw) => {
    const v = raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(v)) throw new CliError(`${flag} takes a number, got ${show(raw)}.`);
    return checkRange(flag, raw, v, range, 'a number');
  };
}

/** A commander argument parser for a comma-separated list of integers (e.g. `--ks 1,2,5`). */
export function intListOption(flag: string, range: NumberRange = {}): (raw: string) => number[] {
  const one = intOption(flag, range);
  return (raw) => {
    const items = raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (items.length === 0)
      throw new CliError(`${flag} takes integers separated by commas, got ${show(raw)}.`);
    return items.map((s) => {
      try {
        return one(s);
      } catch {
        throw new CliError(
          `${flag} takes integers${range.min !== undefined ? ` ${rangeText(range)}` : ''} separated by commas, got ${show(raw)}.`,
        );
      }
    });
  };
}

/** A commander argument parser accepting one of `values`. */
export function enumOption<T extends string>(
  flag: string,
  values: readonly T[],
): (raw: string) => T {
  return (raw) => {
    if (!(values as readonly string[]).includes(raw))
      throw new CliError(`${flag} takes one of ${values.join(', ')}; got ${show(raw)}.`);
    return raw as T;
  };
}

/** A commander argument parser for a path; with `mustExist`, a missing file is named. */
export function pathOption(
  flag: string,
  opts: { mustExist?: boolean } = {},
): (raw: string) => string {
  return (raw) => {
    if (raw.trim() === '') throw new CliError(`${flag} takes a path, got an empty string.`);
    if (opts.mustExist && !existsSync(raw))
      throw new CliError(`${flag} ${raw} does not exist; check the path.`);
    return raw;
  };
}

/**
 * A commander program configured the project's way: errors from commander itself (unknown
 * flag with the nearest suggestion, missing value) are thrown as CommanderError and printed once
 * by `runCli`; `--verbose` adds stack traces.
 */
export function createCommand(name: string, description: string): Command {
  return configureCommand(new Command(name).description(description));
}

/** Applies the project's settings to a command (and, via commander, to its subcommands). */
export function configureCommand(cmd: Command): Command {
  return cmd
    .exitOverride()
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .helpOption('-h, --help', 'show this help and exit')
    .configureHelp({ sortOptions: false, showGlobalOptions: true })
    .configureOutput({ outputError: () => {} })
    .addOption(new Option('--verbose', 'print details (backend choice, stack traces of errors)'));
}

/** Commander's message without its `error: ` prefix, so it can be printed (or thrown) once. */
export function commanderMessage(err: CommanderError): string {
  return err.message.replace(/^error: /, '');
}

let epipeHandled = false;

/**
 * Makes a closed stdout (e.g. `pnpm runs | head`) end the process quietly with exit code 0
 * instead of an EPIPE stack trace.
 */
export function exitQuietlyOnEpipe(): void {
  if (epipeHandled) return;
  epipeHandled = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

function verbose(argv: readonly string[]): boolean {
  return argv.includes('--verbose') || !!process.env.DEBUG || !!process.env.MASKCON_DEBUG;
}

/**
 * Runs a CLI's main function: EPIPE on stdout ends quietly; any error prints `error: <sentence>`
 * once on stderr and sets a non-zero exit code; the stack trace only with `--verbose` or
 * DEBUG / MASKCON_DEBUG set. `--help` (commander's helpDisplayed) exits 0.
 */
export function runCli(main: () => Promise<void> | void, argv = process.argv): void {
  exitQuietlyOnEpipe();
  // --verbose reaches libraries and worker threads (e.g. the backend report) through the
  // environment, which worker threads inherit.
  if (argv.includes('--verbose')) process.env.MASKCON_VERBOSE = '1';
  Promise.resolve()
    .then(main)
    .catch((err: unknown) => {
      if (err instanceof CommanderError) {
        // --help ends with exit code 0; help shown for a missing command has been printed
        // already and ends with commander's code; parse errors were not printed yet.
        if (err.exitCode === 0 || err.code === 'commander.help') process.exit(err.exitCode);
        process.stderr.write(`error: ${commanderMessage(err)}\n`);
        process.exit(err.exitCode || 1);
      }
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`error: ${message}\n`);
      if (verbose(argv) && err instanceof Error && err.stack)
        process.stderr.write(`${err.stack}\n`);
      // Exit now: worker threads or open handles of a failed run must not keep the process alive.
      process.exit(1);
    });
}
