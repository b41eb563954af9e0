/** A one-line progress bar on stderr with items/s and ETA, redrawn at most every 0.5 s. */
export class ProgressBar {
  private readonly start = performance.now();
  private lastDraw = 0;
  private lastDone = -1;
  private readonly tty = process.stderr.isTTY === true;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'img',
  ) {}

  update(done: number, itemsDone: number, extra = '', force = false): void {
    const now = performance.now();
    if (!force && now - this.lastDraw < (this.tty ? 500 : 10_000)) return;
    // In a log (no TTY) the same state is not written twice (e.g. a last update, then finish).
    if (!this.tty && force && done === this.lastDone) return;
    this.lastDraw = now;
    this.lastDone = done;
    const elapsed = (now - this.start) / 1000;
    const rate = itemsDone / Math.max(elapsed, 1e-9);
    const frac = this.total > 0 ? done / this.total : 1;
    const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : 0;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar =
      '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? '>' : '') + ' '.repeat(width - filled);
    const line = `${this.label} [${bar}] ${done}/${this.total} ${rate.toFixed(1)} ${this.unit}/s ETA ${formatDuration(eta)}${extra ? ' ' + extra : ''}`;
    if (this.tty) process.stderr.write(`\r${line}\x1b[K`);
    else process.stderr.write(line + '\n');
  }

  finish(done: number, itemsDone: number, extra = ''): void {
    this.update(done, itemsDone, extra, true);
    if (this.tty) process.stderr.write('\n');
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, '0')}m`
    : m > 0
      ? `${m}m${String(r).padStart(2, '0')}s`
      : `${r}s`;
}

/** Levers that shorten a run, named when its estimate exceeds a day. */
export const LONG_RUN_LEVERS = '--backend tfjs-node-gpu, --epochs, --train-subset';

/**
 * The run's plan: epochs × images per epoch (whole batches; the last partial batch is dropped)
 * and, given a measured rate (images/s), the estimate of the whole run — with the levers that
 * shorten it when it exceeds 24 h.
 */
export function formatPlan(
  epochs: number,
  trainImages: number,
  batchSize: number,
  imagesPerSecond?: number,
): string {
  const perEpoch = Math.floor(trainImages / batchSize) * batchSize;
  const total = epochs * perEpoch;
  let line = `plan: ${epochs} epochs × ${perEpoch.toLocaleString('en')} images = ${total.toLocaleString('en')} images`;
  if (imagesPerSecond !== undefined && imagesPerSecond > 0) {
    const seconds = total / imagesPerSecond;
    line += `; at ${imagesPerSecond.toFixed(1)} img/s the run takes about ${formatDuration(seconds)}`;
    if (seconds > 24 * 3600) line += `\nplan: over a day — shorten it with ${LONG_RUN_LEVERS}`;
  }
  return line;
}
