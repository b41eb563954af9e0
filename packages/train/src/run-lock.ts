/**
 * A run's liveness: while a process trains run `<id>`, `<id>/lock.json` names it (pid, host,
 * start time) and carries a heartbeat (time, epoch, step) refreshed at every step and every few
 * seconds. A run the database says is `running` whose lock is missing or dead (its pid gone on
 * this host, or no heartbeat for STALE_HEARTBEAT_S) was killed: `pnpm runs` shows it
 * `interrupted`, and `--resume` takes its lock over. A live lock refuses a second trainer.
 */
import { hostname } from 'node:os';
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** A heartbeat older than this marks a lock dead even when its pid exists (pid reuse, other hosts). */
export const STALE_HEARTBEAT_S = 600;
/** Heartbeats between steps (a long evaluation, a slow batch) come at least this often. */
const HEARTBEAT_EVERY_MS = 5_000;

export interface RunLockInfo {
  pid: number;
  hostname: string;
  startedAt: string;
  heartbeatAt: string;
  /** Epoch being trained (0 while the queue fills) and the steps of it done. */
  epoch: number;
  step: number;
}

/** The lock's content, or undefined when there is none or it cannot be read as one. */
export function readRunLock(file: string): RunLockInfo | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as RunLockInfo;
    return Number.isInteger(v.pid) && typeof v.hostname === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** Whether the process holding the lock still trains: a sentence saying why or why not. */
export function lockLiveness(
  lock: RunLockInfo,
  now = Date.now(),
): { live: boolean; reason: string } {
  const age = Math.max(0, Math.round((now - Date.parse(lock.heartbeatAt)) / 1000));
  const who = `process ${lock.pid} on ${lock.hostname}`;
  if (!(age < STALE_HEARTBEAT_S))
    return { live: false, reason: `${who} sent no heartbeat for ${age} s` };
  if (lock.hostname === hostname() && !pidExists(lock.pid))
    return { live: false, reason: `${who} is gone` };
  return { live: true, reason: `${who} (last heartbeat ${age} s ago)` };
}

/**
 * The status to show for a run: the database's, except that a `running` run whose lock is
 * missing or dead is `interrupted`.
 */
export function effectiveStatus(status: string, lockFile: string): string {
  if (status !== 'running') return status;
  const lock = readRunLock(lockFile);
  return lock && lockLiveness(lock).live ? 'running' : 'interrupted';
}

/** This process's hold on a run: taken with `acquire`, refreshed with `beat`, given up with `release`. */
export class RunLock {
  private info: RunLockInfo;
  private timer?: NodeJS.Timeout;
  private released = false;

  private constructor(private readonly file: string) {
    const now = new Date().toISOString();
    this.info = {
      pid: process.pid,
      hostname: hostname(),
      startedAt: now,
      heartbeatAt: now,
      epoch: 0,
      step: 0,
    };
  }

  /**
   * Takes the lock of `run` at `file`, atomically (a hard link fails when the file exists).
   * A live holder is refused naming its pid and host; a dead one is taken over with a note.
   */
  static acquire(file: string, run: number, note: (m: string) => void): RunLock {
    const lock = new RunLock(file);
    for (let attempt = 0; ; attempt++) {
      const tmp = lock.writeTemp();
      try {
        linkSync(tmp, file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (attempt > 0)
          throw new Error(
            `Run ${run} was taken by another process while this one replaced its stale lock ${file}; \`pnpm runs\` shows who trains it.`,
          );
      } finally {
        rmSync(tmp, { force: true });
      }
      const held = readRunLock(file);
      if (held) {
        const { live, reason } = lockLiveness(held);
        if (live && held.pid !== process.pid)
          throw new Error(
            `Run ${run} is being trained by ${reason}; a second trainer would overwrite its checkpoints. Stop that process first (Ctrl-C lets it checkpoint) or wait for it to end. Its lock: ${file}.`,
          );
        note(`run ${run}: its lock ${file} is stale (${reason}); taking it over`);
      } else note(`run ${run}: unreadable lock ${file} replaced`);
      rmSync(file, { force: true });
    }
    lock.timer = setInterval(() => lock.write(), HEARTBEAT_EVERY_MS);
    lock.timer.unref();
    return lock;
  }

  private writeTemp(): string {
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(this.info));
    return tmp;
  }

  private write(): void {
    if (this.released) return;
    this.info.heartbeatAt = new Date().toISOString();
    renameSync(this.writeTemp(), this.file);
  }

  /** A heartbeat, with where the run is: `step` steps of `epoch` done. */
  beat(epoch = this.info.epoch, step = this.info.step): void {
    this.info.epoch = epoch;
    this.info.step = step;
    this.write();
  }

  /** Gives the run up (its status in the database now says how it ended). */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    if (readRunLock(this.file)?.pid === process.pid) rmSync(this.file, { force: true });
  }
}
