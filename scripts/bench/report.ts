/*
 * report.ts — what a bench run found, as JSON (the shape below is what --json writes) and
 * as tables for the terminal.
 *
 * One result per (system, clients, synchronous_standby_names, mode) run. With
 * --compare-postgres, one comparison per combination both systems ran: walship's figure
 * divided by PostgreSQL's (above 1: walship is slower for latency, faster for tps).
 */
import { formatMillis, summarize, type LatencySummary } from './latency.js';
import type { BenchOptions, SynchronousCommit } from './options.js';
import type { RunOutcome, SystemName } from './target.js';

export interface Combination {
  readonly clients: number;
  readonly standbyNames: string;
  readonly mode: SynchronousCommit;
}

export interface CombinationResult extends Combination {
  readonly system: SystemName;
  readonly transactions: number;
  readonly seconds: number;
  readonly tps: number;
  readonly latency: LatencySummary;
}

export interface Comparison extends Combination {
  readonly walship: { readonly tps: number; readonly p50Us: number; readonly p99Us: number };
  readonly postgresql: { readonly tps: number; readonly p50Us: number; readonly p99Us: number };
  readonly tpsRatio: number;
  readonly p50Ratio: number;
  readonly p99Ratio: number;
}

export interface BenchReport {
  readonly tool: 'walship bench';
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly node: string; readonly platform: string };
  readonly options: {
    readonly clients: readonly number[];
    readonly durationSeconds: number | null;
    readonly transactionsPerClient: number | null;
    readonly modes: readonly SynchronousCommit[];
    readonly standbyNames: readonly string[];
    readonly standbys: number;
    readonly placement: string;
    readonly mix: string;
    readonly comparePostgres: boolean;
  };
  readonly results: CombinationResult[];
  readonly comparisons: Comparison[];
}

export function reportOptions(options: BenchOptions): BenchReport['options'] {
  return {
    clients: options.clients,
    durationSeconds: options.length.kind === 'duration' ? options.length.seconds : null,
    transactionsPerClient: options.length.kind === 'transactions' ? options.length.perClient : null,
    modes: options.modes,
    standbyNames: options.standbyNames,
    standbys: options.standbys,
    placement: options.placement,
    mix: options.mix,
    comparePostgres: options.comparePostgres,
  };
}

export function resultOf(system: SystemName, combination: Combination, outcome: RunOutcome): CombinationResult {
  return {
    system, ...combination,
    transactions: outcome.transactions,
    seconds: round(outcome.seconds, 3),
    tps: round(outcome.tps, 1),
    latency: summarize(outcome.histogram),
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function sameCombination(a: Combination, b: Combination): boolean {
  return a.clients === b.clients && a.standbyNames === b.standbyNames && a.mode === b.mode;
}

/** walship / PostgreSQL for every combination both ran. */
export function compare(results: readonly CombinationResult[]): Comparison[] {
  const comparisons: Comparison[] = [];
  for (const ours of results.filter((r) => r.system === 'walship')) {
    const theirs = results.find((r) => r.system === 'postgresql' && sameCombination(r, ours));
    if (theirs === undefined) continue;
    const figures = (r: CombinationResult) => ({ tps: r.tps, p50Us: r.latency.p50Us, p99Us: r.latency.p99Us });
    const ratio = (a: number, b: number): number => (b === 0 ? NaN : round(a / b, 2));
    comparisons.push({
      clients: ours.clients, standbyNames: ours.standbyNames, mode: ours.mode,
      walship: figures(ours), postgresql: figures(theirs),
      tpsRatio: ratio(ours.tps, theirs.tps),
      p50Ratio: ratio(ours.latency.p50Us, theirs.latency.p50Us),
      p99Ratio: ratio(ours.latency.p99Us, theirs.latency.p99Us),
    });
  }
  return comparisons;
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((row) => /^[-\d.,x×]+$|^n\/a$/.test(row[i] ?? '')));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

export function resultsTable(results: readonly CombinationResult[]): string[] {
  return table(
    ['system', 'clients', 'synchronous_standby_names', 'synchronous_commit', 'xacts', 'tps', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
    results.map((r) => [
      r.system, String(r.clients), r.standbyNames === '' ? "''" : r.standbyNames, r.mode, String(r.transactions), r.tps.toFixed(1),
      formatMillis(r.latency.p50Us), formatMillis(r.latency.p95Us), formatMillis(r.latency.p99Us), formatMillis(r.latency.maxUs),
    ]),
  );
}

export function comparisonTable(comparisons: readonly Comparison[]): string[] {
  const ratio = (r: number): string => (Number.isNaN(r) ? 'n/a' : `${r.toFixed(2)}x`);
  return table(
    ['clients', 'synchronous_standby_names', 'synchronous_commit', 'tps walship', 'tps pg', 'p50 ms walship', 'p50 ms pg', 'p50 ratio', 'p99 ms walship', 'p99 ms pg', 'p99 ratio'],
    comparisons.map((c) => [
      String(c.clients), c.standbyNames === '' ? "''" : c.standbyNames, c.mode,
      c.walship.tps.toFixed(1), c.postgresql.tps.toFixed(1),
      formatMillis(c.walship.p50Us), formatMillis(c.postgresql.p50Us), ratio(c.p50Ratio),
      formatMillis(c.walship.p99Us), formatMillis(c.postgresql.p99Us), ratio(c.p99Ratio),
    ]),
  );
}
