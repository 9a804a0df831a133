/*
 * options.ts — what `walship bench` is asked to run, checked once at the command line.
 *
 * The command line hands over text; the parsers here turn it into a BenchOptions or say what
 * is wrong with which option (commander prints the message and exits). Defaults live here
 * too, so the command, the core function and the tests agree on them. Nothing here starts a
 * server: bench.ts runs what these options describe.
 */
import type { ServerPlacement } from '../../src/index.js';

/** The five synchronous_commit levels, weakest first: the order a report lists them in. */
export const SYNCHRONOUS_COMMIT_LEVELS = ['off', 'local', 'remote_write', 'on', 'remote_apply'] as const;
export type SynchronousCommit = (typeof SYNCHRONOUS_COMMIT_LEVELS)[number];

export const PLACEMENTS: readonly ServerPlacement[] = ['inline', 'thread', 'process'];

/** insert: one new row per transaction; update: one random row of a preloaded table. */
export const MIXES = ['insert', 'update'] as const;
export type Mix = (typeof MIXES)[number];

/** How long each combination runs: for a time, or for a number of transactions per client. */
export type RunLength = { readonly kind: 'duration'; readonly seconds: number } | { readonly kind: 'transactions'; readonly perClient: number };

export interface BenchOptions {
  readonly clients: readonly number[];
  readonly length: RunLength;
  readonly modes: readonly SynchronousCommit[];
  /** Each is set in turn on the primary with ALTER SYSTEM + pg_reload_conf(). */
  readonly standbyNames: readonly string[];
  /** Standbys s1..sN. */
  readonly standbys: number;
  readonly placement: ServerPlacement;
  readonly mix: Mix;
  readonly jsonFile?: string;
  readonly svgFile?: string;
  readonly comparePostgres: boolean;
  /** Where the data directories go; a temporary directory (removed at the end) when absent. */
  readonly dir?: string;
  /** Draw a progress bar on stderr (only ever when stderr is a terminal). */
  readonly progress: boolean;
}

export const DEFAULT_STANDBY_NAMES = 'FIRST 1 (s1, s2)';
export const DEFAULT_DURATION_SECONDS = 10;

/** Limits that keep one run on a 2-core machine bounded in time and connections. */
export const MAX_CLIENTS = 256;
export const MAX_STANDBYS = 8;
export const MAX_DURATION_SECONDS = 3600;
export const MAX_TRANSACTIONS_PER_CLIENT = 10_000_000;

export const DEFAULT_OPTIONS: BenchOptions = {
  clients: [1],
  length: { kind: 'duration', seconds: DEFAULT_DURATION_SECONDS },
  modes: SYNCHRONOUS_COMMIT_LEVELS,
  standbyNames: [DEFAULT_STANDBY_NAMES],
  standbys: 2,
  placement: 'thread',
  mix: 'insert',
  comparePostgres: false,
  progress: true,
};

/** A user's mistake in an option: its text says which option and how to fix it. */
export class OptionError extends Error {}

export function parseInteger(option: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new OptionError(`${option} must be an integer from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

function listItems(option: string, text: string): string[] {
  const items = text.split(',').map((item) => item.trim());
  if (items.some((item) => item === '')) throw new OptionError(`${option} is a comma-separated list with no empty items, got "${text}"`);
  return items;
}

function withoutRepeats<T>(option: string, items: readonly T[]): T[] {
  const seen = new Set<T>();
  for (const item of items) {
    if (seen.has(item)) throw new OptionError(`${option} names ${String(item)} twice`);
    seen.add(item);
  }
  return [...items];
}

/** "1,8" -> [1, 8]. */
export function parseClients(text: string): number[] {
  return withoutRepeats('--clients', listItems('--clients', text).map((item) => parseInteger('--clients', item, 1, MAX_CLIENTS)));
}

/** "off,local" -> ['off', 'local'], in the order given. */
export function parseModes(text: string): SynchronousCommit[] {
  const modes = listItems('--modes', text).map((item) => {
    const mode = SYNCHRONOUS_COMMIT_LEVELS.find((level) => level === item);
    if (mode === undefined) throw new OptionError(`--modes: "${item}" is not a synchronous_commit level (${SYNCHRONOUS_COMMIT_LEVELS.join(', ')})`);
    return mode;
  });
  return withoutRepeats('--modes', modes);
}

export function parsePlacement(text: string): ServerPlacement {
  const placement = PLACEMENTS.find((p) => p === text);
  if (placement === undefined) throw new OptionError(`--placement must be one of ${PLACEMENTS.join(', ')}, got "${text}"`);
  return placement;
}

export function parseMix(text: string): Mix {
  const mix = MIXES.find((m) => m === text);
  if (mix === undefined) throw new OptionError(`--mix must be one of ${MIXES.join(', ')}, got "${text}"`);
  return mix;
}

/**
 * A synchronous_standby_names value as the user wrote it. PostgreSQL parses it when the
 * primary reloads; here it only has to fit in a quoted SQL literal and a single line.
 */
export function parseStandbyNames(text: string): string {
  if (/[\r\n\0]/.test(text)) throw new OptionError('--standby-names must be one line of text');
  return text.trim();
}

export function parseDuration(text: string): RunLength {
  return { kind: 'duration', seconds: parseInteger('--duration', text, 1, MAX_DURATION_SECONDS) };
}

export function parseTransactions(text: string): RunLength {
  return { kind: 'transactions', perClient: parseInteger('--transactions', text, 1, MAX_TRANSACTIONS_PER_CLIENT) };
}

export function parseStandbys(text: string): number {
  return parseInteger('--standbys', text, 1, MAX_STANDBYS);
}

/** The standbys' names: s1..sN, as synchronous_standby_names refers to them. */
export function standbyNamesOf(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `s${i + 1}`);
}

/** A quoted SQL string literal (ALTER SYSTEM takes no parameters). */
export function sqlLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
