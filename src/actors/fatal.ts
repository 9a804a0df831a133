/*
 * fatal.ts — a process that cannot go on says why in the server log before it dies.
 *
 * PostgreSQL writes "FATAL:  <message>" (and "HINT:  ...") to the log when a process exits
 * on an error it cannot survive (a damaged control file, WAL from another cluster, a bad
 * postgresql.conf). Actors that may end that way run their handlers through this, then let
 * the error crash them as usual, so their supervisor still sees the crash.
 */
import { PgError } from '../errors.js';
import type { Context } from '../runtime/context.js';

export function reportingFatal<T>(ctx: Context, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof PgError && (err.severity === 'FATAL' || err.severity === 'PANIC')) {
      ctx.log('fatal', err.message);
      if (err.detail !== undefined) ctx.log('info', `DETAIL:  ${err.detail}`);
      if (err.hint !== undefined) ctx.log('info', `HINT:  ${err.hint}`);
    }
    throw err;
  }
}
