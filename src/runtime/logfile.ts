/*
 * logfile.ts — server log files: lifecycle events and log records written as lines in the
 * format PostgreSQL's default log_line_prefix gives, to a file chosen per event.
 *
 *   2026-11-22 03:01:02.123 UTC [startup] LOG:  redo starts at 0/1000040
 *
 * Writes are synchronous and unbuffered (one descriptor per file, kept open) so that a log
 * survives a crash of the server that wrote it, which is when it is read.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeReason } from './actor.js';
import type { RuntimeEvent } from './events.js';
import type { Kernel } from './kernel.js';

const LEVELS = { debug: 'DEBUG', info: 'LOG', warning: 'WARNING', error: 'ERROR', fatal: 'FATAL' } as const;

export function formatLogLine(event: RuntimeEvent, process: string): string {
  const time = new Date(event.at).toISOString().replace('T', ' ').replace('Z', ' UTC');
  if (event.kind === 'log') {
    // A detail line ("HINT:  ...") stands on its own, as PostgreSQL prints it after its message.
    if (/^(HINT|DETAIL|CONTEXT):  /.test(event.text)) return `${time} [${process}] ${event.text}`;
    return `${time} [${process}] ${LEVELS[event.level]}:  ${event.text}`;
  }
  if (event.kind === 'crashed') return `${time} [${process}] LOG:  ${process} process exited abnormally: ${event.reason === undefined ? 'unknown' : describeReason(event.reason)}`;
  return `${time} [${process}] DEBUG:  ${process} process ${event.kind}`;
}

/** Routes each event to a file (or nowhere) and appends its line; returns the detach function. */
export function attachLogFiles(kernel: Kernel, route: (event: RuntimeEvent) => { path: string; process: string } | null): () => void {
  const fds = new Map<string, number>();
  const detach = kernel.onEvent((event) => {
    const target = route(event);
    if (target === null) return;
    let fd = fds.get(target.path);
    if (fd === undefined) {
      mkdirSync(dirname(target.path), { recursive: true });
      fd = openSync(target.path, 'a');
      fds.set(target.path, fd);
    }
    writeSync(fd, `${formatLogLine(event, target.process)}\n`);
  });
  const close = (): void => {
    detach();
    for (const fd of fds.values()) closeSync(fd);
    fds.clear();
  };
  kernel.onShutdown(close);
  return close;
}
