/*
 * offload-worker.ts — the piscina worker: imports a task's module, runs the task.
 */
import { findTask } from './offload.js';

export default async function runTask(request: { module: string; name: string; input: unknown }): Promise<unknown> {
  await import(request.module);
  const fn = findTask(request.module, request.name);
  if (fn === undefined) throw new Error(`offload task "${request.name}" is not defined by ${request.module}`);
  return fn(request.input);
}
