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
