/*
 * bench.ts — `walship bench`: what each durability level costs, measured.
 *
 * runBench() is the whole command without its command line (scripts/walship.ts parses the
 * options; the tests call this directly):
 *
 *   1. With --compare-postgres, check that PostgreSQL 15 can run here before starting
 *      anything, and fail with what is missing if not.
 *   2. Make the data directory (a temporary one unless --dir) and start walship's topology,
 *      then PostgreSQL's: a primary and standbys s1..sN (walship-target.ts,
 *      postgres-target.ts). Every start adds its undo to one Cleanup, which runs at the end,
 *      on error and on Ctrl-C alike.
 *   3. For each synchronous_standby_names value, set it on every target; then for each
 *      client count and each synchronous_commit level, one run per target, the targets
 *      taking turns (walship, PostgreSQL, walship, ...) so that a drift of the machine's
 *      speed over the runs touches both alike.
 *   4. Report: a table on `print`, and the JSON and SVG files asked for.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPostgres, type PostgresRunner } from './as-postgres.js';
import { Cleanup, cleanUpOnSignals } from './cleanup.js';
import type { BenchOptions } from './options.js';
import { PostgresTarget } from './postgres-target.js';
import { progressBar } from './progress.js';
import { compare, comparisonTable, reportOptions, resultOf, resultsTable, type BenchReport, type Combination, type CombinationResult } from './report.js';
import { latencySvg } from './svg.js';
import type { BenchTarget } from './target.js';
import { WalshipTarget } from './walship-target.js';

export interface BenchOutput {
  /** The report: tables and what was written (stdout). */
  readonly print: (line: string) => void;
  /** What is going on: topology starts, cleanup (stderr). */
  readonly note: (line: string) => void;
}

export async function runBench(options: BenchOptions, output: BenchOutput): Promise<BenchReport> {
  const startedAt = new Date();
  const postgres = options.comparePostgres ? findPostgres() : null;
  const cleanup = new Cleanup();
  const stopListening = cleanUpOnSignals(cleanup, output.note);
  try {
    const root = dataDirectory(options.dir, postgres, cleanup);
    // Before the directories go: no PostgreSQL program may still be writing in them.
    if (postgres !== null) cleanup.add('ending PostgreSQL programs still running', () => postgres.endAll());
    const targets = await startTargets(options, root, postgres, cleanup, output);
    const results = await runCombinations(options, targets);
    const report: BenchReport = {
      tool: 'walship bench',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, platform: platform() },
      options: reportOptions(options),
      results,
      comparisons: compare(results),
    };
    printReport(report, output.print);
    if (options.jsonFile !== undefined) {
      writeFileSync(options.jsonFile, `${JSON.stringify(report, null, 2)}\n`);
      output.print(`wrote ${options.jsonFile}`);
    }
    if (options.svgFile !== undefined) {
      writeFileSync(options.svgFile, latencySvg(results, subtitleOf(options)));
      output.print(`wrote ${options.svgFile}`);
    }
    return report;
  } finally {
    for (const failure of await cleanup.run()) output.note(`walship bench: cleanup: ${failure}`);
    stopListening();
  }
}

/** --dir (kept afterwards), or a temporary directory removed at the end; readable by postgres when compared. */
function dataDirectory(dir: string | undefined, postgres: PostgresRunner | null, cleanup: Cleanup): string {
  if (dir !== undefined) {
    mkdirSync(dir, { recursive: true });
    return dir;
  }
  const root = postgres === null ? mkdtempSync(join(tmpdir(), 'walship-bench-')) : postgres.makeDir({ parent: tmpdir(), prefix: 'walship-bench-' });
  cleanup.add(`removing ${root}`, () => rmSync(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
  return root;
}

async function startTargets(options: BenchOptions, root: string, postgres: PostgresRunner | null, cleanup: Cleanup, output: BenchOutput): Promise<BenchTarget[]> {
  const walshipDir = join(root, 'walship');
  const postgresPath = join(root, 'postgresql');
  // Data left by an earlier run with the same --dir is an error, not a mix.
  for (const path of postgres === null ? [walshipDir] : [walshipDir, postgresPath]) {
    if (existsSync(path)) throw new Error(`${path} already exists (from an earlier run?): give --dir a new or empty directory`);
  }
  mkdirSync(walshipDir);
  output.note(`walship: starting a primary and ${plural(options.standbys, 'standby', 'standbys')} (placement ${options.placement}) in ${walshipDir}`);
  const targets: BenchTarget[] = [await WalshipTarget.start({ dir: walshipDir, placement: options.placement, standbys: options.standbys, mix: options.mix }, cleanup)];
  if (postgres !== null) {
    const postgresDir = postgres.makeDir({ path: postgresPath });
    output.note(`PostgreSQL 15: starting a primary and ${plural(options.standbys, 'standby', 'standbys')} in ${postgresDir}`);
    targets.push(await PostgresTarget.start(postgres, { dir: postgresDir, standbys: options.standbys, mix: options.mix }, cleanup));
  }
  return targets;
}

function combinationsOf(options: BenchOptions, standbyNames: string): Combination[] {
  return options.clients.flatMap((clients) => options.modes.map((mode) => ({ clients, standbyNames, mode })));
}

async function runCombinations(options: BenchOptions, targets: readonly BenchTarget[]): Promise<CombinationResult[]> {
  const totalRuns = options.standbyNames.length * options.clients.length * options.modes.length * targets.length;
  const progress = progressBar(totalRuns, options.progress);
  const results: CombinationResult[] = [];
  try {
    for (const standbyNames of options.standbyNames) {
      for (const target of targets) await target.setStandbyNames(standbyNames);
      for (const combination of combinationsOf(options, standbyNames)) {
        for (const target of targets) {
          const index = results.length;
          const label = `${target.system}, ${plural(combination.clients, 'client', 'clients')}, ${combination.mode}`;
          progress.update(index, 0, label);
          const outcome = await target.run({
            clients: combination.clients, mode: combination.mode, length: options.length,
            onProgress: (fraction) => progress.update(index, fraction, label),
          }).catch((err: unknown) => {
            const run = `${target.system}, ${plural(combination.clients, 'client', 'clients')}, synchronous_commit = ${combination.mode}, synchronous_standby_names = '${standbyNames}'`;
            throw new Error(`the run (${run}) failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
          });
          results.push(resultOf(target.system, combination, outcome));
        }
      }
    }
  } finally {
    progress.stop();
  }
  return results;
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

function subtitleOf(options: BenchOptions): string {
  const length = options.length.kind === 'duration' ? `${options.length.seconds} s per run` : `${options.length.perClient} transactions per client`;
  return `${options.mix} mix, ${plural(options.standbys, 'standby', 'standbys')}, placement ${options.placement}, ${length}, ${cpus().length} CPUs, node ${process.version}`;
}

function printReport(report: BenchReport, print: (line: string) => void): void {
  print('');
  print(`walship bench: ${report.options.mix} mix, ${plural(report.options.standbys, 'standby', 'standbys')}, placement ${report.options.placement}; ` +
    `${report.machine.cpus} x ${report.machine.cpuModel}, node ${report.machine.node}`);
  print('commit latency (ms) and throughput per run:');
  for (const line of resultsTable(report.results)) print(`  ${line}`);
  if (report.comparisons.length > 0) {
    print('');
    print('walship beside PostgreSQL 15 (ratio = walship / PostgreSQL; above 1x walship is slower):');
    for (const line of comparisonTable(report.comparisons)) print(`  ${line}`);
  }
  print('');
}
