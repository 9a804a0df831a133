/*
 * offload.ts — stateless CPU work (checksums, compression) on a piscina pool.
 *
 * A task is registered under (module URL, name) like a behaviour, so a pool thread can import
 * the module and find the function. An actor asks with `ctx.io(offload(task, input), tag)`
 * and the result comes back as the `tag` message. Under simulation the task runs in-process,
 * synchronously and deterministically, with a simulated latency.
 *
 * The pool is one per process, created on first use and destroyed when the last kernel that
 * used it shuts down, so idle pool threads never keep a process alive.
 */
import { Piscina } from 'piscina';
import { OFFLOAD_MAX_THREADS } from '../constants.js';
import type { IoOp, SimIoCompletion } from './io.js';

export interface OffloadTask<I, O> {
  readonly module: string;
  readonly name: string;
  /** Phantom field: carries the input and output types; never set. */
  readonly types?: (input: I) => O;
}

interface OffloadOp extends IoOp {
  readonly kind: 'offload';
  readonly module: string;
  readonly name: string;
  readonly input: unknown;
}

const tasks = new Map<string, (input: any) => unknown>();

export function defineTask<I, O>(module: string, name: string, fn: (input: I) => O): OffloadTask<I, O> {
  tasks.set(`${module}#${name}`, fn);
  return Object.freeze({ module, name });
}

export function findTask(module: string, name: string): ((input: unknown) => unknown) | undefined {
  return tasks.get(`${module}#${name}`);
}

/** The I/O op that runs `task(input)` off the actor's thread. */
export function offload<I, O>(task: OffloadTask<I, O>, input: I): IoOp {
  const op: OffloadOp = { kind: 'offload', module: task.module, name: task.name, input };
  return op;
}

/** Simulated offload: the same function, in-process, after a seeded 0-2 ms. */
export function simulatedOffload(op: IoOp, random: () => number): SimIoCompletion {
  const { module, name, input } = op as OffloadOp;
  const fn = findTask(module, name);
  const latencyMs = Math.floor(random() * 3);
  if (fn === undefined) return { latencyMs, outcome: { ok: false, error: { message: `offload task "${name}" of ${module} is not registered` } } };
  // A task that throws fails its op, as the pool's rejected promise does; it does not crash the simulation.
  try {
    return { latencyMs, outcome: { ok: true, value: fn(input) } };
  } catch (err) {
    return { latencyMs, outcome: { ok: false, error: { message: err instanceof Error ? err.message : String(err) } } };
  }
}

let pool: Piscina | null = null;
let users = 0;

/** The real handler for `offload` ops; `release` must be called once per `acquire`. */
export function acquireOffloadPool(): { run: (op: IoOp) => Promise<unknown>; release: () => Promise<void> } {
  users++;
  let released = false;
  return {
    run: (op) => {
      pool ??= new Piscina({
        filename: new URL('./offload-worker.js', import.meta.url).href,
        minThreads: 0,
        maxThreads: OFFLOAD_MAX_THREADS,
      });
      const { module, name, input } = op as OffloadOp;
      return pool.run({ module, name, input });
    },
    release: async () => {
      if (released) return;
      released = true;
      users--;
      if (users === 0 && pool !== null) {
        const closing = pool;
        pool = null;
        await closing.destroy();
      }
    },
  };
}
