/*
 * cleanup.ts — everything a bench run starts, stopped again: on success, on error and on
 * Ctrl-C.
 *
 * Whoever starts something (a walship cluster, a PostgreSQL server, a temporary directory)
 * adds its undo step here at once, before starting the next thing. run() undoes them newest
 * first (servers stop before their directories go), each step whatever the previous one did,
 * and only once: the normal exit path and a signal handler may both call it. A signal
 * (SIGINT, SIGTERM, SIGHUP) runs the steps and then exits with 128 + the signal's number.
 */
import { constants } from 'node:os';

interface Step {
  readonly what: string;
  readonly undo: () => Promise<void> | void;
}

export class Cleanup {
  private readonly steps: Step[] = [];
  private done: Promise<string[]> | null = null;

  add(what: string, undo: () => Promise<void> | void): void {
    if (this.done !== null) throw new Error(`cannot add "${what}" to a cleanup that has already run`);
    this.steps.push({ what, undo });
  }

  /** Runs every step once, newest first; resolves with the failures ("what: why"), if any. */
  run(): Promise<string[]> {
    this.done ??= (async () => {
      const failures: string[] = [];
      for (const step of this.steps.reverse()) {
        try {
          await step.undo();
        } catch (err) {
          failures.push(`${step.what}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      return failures;
    })();
    return this.done;
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Until the returned function is called, a signal runs `cleanup` and exits the process. */
export function cleanUpOnSignals(cleanup: Cleanup, print: (line: string) => void): () => void {
  let interrupted = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      print(`walship bench: ${signal} again; still cleaning up`);
      return;
    }
    interrupted = true;
    print(`walship bench: ${signal}: stopping servers and removing temporary directories`);
    void cleanup.run().then((failures) => {
      for (const failure of failures) print(`walship bench: cleanup: ${failure}`);
      process.exit(128 + constants.signals[signal]);
    });
  };
  for (const signal of SIGNALS) process.on(signal, handler);
  return () => {
    for (const signal of SIGNALS) process.off(signal, handler);
  };
}
