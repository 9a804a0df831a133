/*
 * events.ts — what a node tells its observers: lifecycle events and log records.
 *
 * Every actor start, restart, crash and stop is an event, and so is every `ctx.log` line.
 * Hosted nodes (worker threads, child processes) forward theirs to the node that placed them,
 * so a test or a log file on the main thread sees the whole tree.
 */
import { describeReason, type ActorRef, type ExitReason } from './actor.js';
import type { LogFields, LogLevel } from './context.js';

export interface LifecycleEvent {
  readonly kind: 'started' | 'restarted' | 'crashed' | 'stopped';
  readonly at: number;
  readonly node: string;
  readonly ref: ActorRef;
  readonly name: string;
  readonly incarnation: number;
  readonly reason?: ExitReason;
}

export interface LogRecord {
  readonly kind: 'log';
  readonly at: number;
  readonly node: string;
  readonly ref: ActorRef;
  readonly name: string;
  readonly level: LogLevel;
  readonly text: string;
  readonly fields?: LogFields;
}

export type RuntimeEvent = LifecycleEvent | LogRecord;

export type EventListener = (event: RuntimeEvent) => void;

/** One line per event, as the demo and debugging print them. */
export function formatEvent(event: RuntimeEvent): string {
  const time = new Date(event.at).toISOString();
  const who = `${event.name} (${event.ref.node}/${event.ref.id})`;
  if (event.kind === 'log') {
    const fields = event.fields === undefined ? '' : ` ${JSON.stringify(event.fields)}`;
    return `${time} ${event.level.toUpperCase()}: ${who}: ${event.text}${fields}`;
  }
  const reason = event.reason === undefined ? '' : `: ${describeReason(event.reason)}`;
  return `${time} ${event.kind} ${who}${reason}`;
}
