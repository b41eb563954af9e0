import { constants } from 'node:os';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Ctrl-C / SIGTERM during training. The first signal only asks the loop to stop at its next
 * step boundary (where it checkpoints); the handlers are then removed, so a second signal
 * takes the default action and ends the process at once — even inside a synchronous step —
 * leaving the last checkpoint written (checkpoints are renamed into place whole).
 */
export class StopRequest {
  /** The signal that asked to stop, once one did. */
  signal?: NodeJS.Signals;
  private readonly handler = (signal: NodeJS.Signals) => {
    if (this.signal) {
      // Two signals queued before the first was handled: the second ends the process now.
      this.dispose();
      process.kill(process.pid, signal);
      return;
    }
    this.signal = signal;
    this.dispose();
    this.onFirst(signal);
  };

  constructor(private readonly onFirst: (signal: NodeJS.Signals) => void) {
    for (const s of STOP_SIGNALS) process.on(s, this.handler);
  }

  get requested(): boolean {
    return this.signal !== undefined;
  }

  /** The conventional exit status of a process ended by the signal: 130 for SIGINT, 143 for SIGTERM. */
  get exitCode(): number {
    return 128 + (this.signal ? constants.signals[this.signal] : 0);
  }

  dispose(): void {
    for (const s of STOP_SIGNALS) process.removeListener(s, this.handler);
  }
}

/** Training stopped on a signal after writing its checkpoint; the message says how to resume. */
export class TrainingInterrupted extends Error {
  constructor(
    message: string,
    readonly runId: number,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'TrainingInterrupted';
  }
}
