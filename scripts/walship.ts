#!/usr/bin/env node
/*
 * walship.ts — the command line. `demo`: a small HA topology (scripts/failover-demo.ts):
 * commit latency by synchronous_commit level, then a failover, every step checked (with
 * --actors, first the actor runtime at work: a supervised tree over this thread, a worker
 * thread and a child process, a crash and its restart).
 * `bench`: what each synchronous_commit level costs, on a primary with standbys, and
 * beside PostgreSQL 15 if asked (scripts/bench/bench.ts).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { runBench } from './bench/bench.js';
import {
  DEFAULT_DURATION_SECONDS, DEFAULT_OPTIONS, DEFAULT_STANDBY_NAMES, MIXES, OptionError, parseClients, parseDuration, parseMix, parseModes,
  parsePlacement, parseStandbyNames, parseStandbys, parseTransactions, PLACEMENTS, SYNCHRONOUS_COMMIT_LEVELS,
  type BenchOptions, type Mix, type RunLength, type SynchronousCommit,
} from './bench/options.js';
import { runDemo } from './demo.js';
import { runFailoverDemo } from './failover-demo.js';
import { DEFAULT_STATE_PATH, runUp } from './up.js';
import { command, logs, psqlTable, statePathOf } from './commands.js';
import { processAlive, readState, type ControlRequest } from './control.js';
import type { ServerPlacement } from '../src/index.js';

const program = new Command()
  .name('walship')
  .description("PostgreSQL's replication machinery as a supervised actor tree");

program
  .command('demo')
  .description('a primary, two standbys (one synchronous), a cascaded standby and an archive: commit latency by level, then a failover, checked step by step')
  .addOption(new Option('--placement <where>', 'where the servers run').choices(['inline', 'thread', 'process']).default('thread'))
  .option('--commits <n>', 'commits per synchronous_commit level in the latency round', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError(`must be an integer from 1 to 100000, got "${v}"`);
    return n;
  }, 200)
  .option('--actors', 'first show the actor runtime itself: a supervised tree across placements, a crash and its restart')
  .option('--rounds <n>', 'with --actors: request/reply rounds per placement', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new InvalidArgumentError(`must be an integer from 1 to 1000000, got "${v}"`);
    return n;
  }, 2000)
  .action(async (options: { placement: ServerPlacement; commits: number; actors?: boolean; rounds: number }) => {
    if (options.actors === true) await runDemo(options.rounds, (line) => console.log(line));
    const { ok } = await runFailoverDemo({ placement: options.placement, commitsPerLevel: options.commits }, (line) => console.log(line));
    if (!ok) process.exitCode = 1;
  });

program
  .command('up')
  .description('start the servers of a topology file and show their state until Ctrl-C stops them (examples/ has some)')
  .argument('<file>', 'the topology file (YAML)')
  .option('--dir <path>', 'where the data directories go (kept afterwards); default a temporary directory, removed at the end')
  .option('--once', 'show the state once, then stop everything')
  .option('--detach', 'start it in the background and return; then use walship status, sql, promote, stop, ...')
  .option('--state <file>', `with --detach: where the running topology is recorded (default ${DEFAULT_STATE_PATH}, or $WALSHIP_STATE)`)
  .addOption(new Option('--serve', 'the background process itself').hideHelp())
  .addOption(new Option('--temporary-dir', 'the background process removes --dir when it stops').hideHelp())
  .option('--refresh <ms>', 'how often the state is shown again', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 100) throw new InvalidArgumentError(`must be an integer of at least 100, got "${v}"`);
    return n;
  }, 1000)
  .action(async (file: string, options: { dir?: string; once?: boolean; refresh: number; detach?: boolean; state?: string; serve?: boolean; temporaryDir?: boolean }) => {
    process.exitCode = await runUp(
      {
        file, ...(options.dir === undefined ? {} : { dir: options.dir }), once: options.once === true, refreshMs: options.refresh,
        statePath: statePathOf(options.state), detach: options.detach === true,
        ...(options.serve === true ? { serve: { removeDir: options.temporaryDir === true } } : {}),
      },
      (text) => process.stdout.write(text), (text) => console.error(text),
    );
  });

const io = { out: (text: string) => process.stdout.write(text), err: (text: string) => console.error(text) };
const stateOption = (): Option => new Option('--state <file>', `the running topology's state file (default ${DEFAULT_STATE_PATH}, or $WALSHIP_STATE)`);

program
  .command('status')
  .description('the state of each server of the running topology')
  .addOption(stateOption())
  .option('--json', 'as JSON')
  .action(async (options: { state?: string; json?: boolean }) => {
    process.exitCode = await command(statePathOf(options.state), { command: 'status' }, options.json === true, io, (reply) => {
      io.out(String(reply['text']));
      return 0;
    });
  });

program
  .command('sql')
  .description('run one SQL statement on a server of the running topology, printed as psql does')
  .argument('<server>', 'the server')
  .argument('<sql>', 'the statement')
  .addOption(stateOption())
  .option('--json', 'the result as JSON')
  .action(async (server: string, sql: string, options: { state?: string; json?: boolean }) => {
    process.exitCode = await command(statePathOf(options.state), { command: 'sql', server, sql }, options.json === true, io, (reply) => {
      io.out(psqlTable(reply['result'] as Parameters<typeof psqlTable>[0]));
      return 0;
    });
  });

program
  .command('promote')
  .description('promote a standby of the running topology (pg_promote)')
  .argument('<server>', 'the standby')
  .addOption(stateOption())
  .option('--json', 'as JSON')
  .action(async (server: string, options: { state?: string; json?: boolean }) => {
    process.exitCode = await command(statePathOf(options.state), { command: 'promote', server }, options.json === true, io, (reply) => {
      const promoted = reply['promoted'] === true;
      io.out(promoted ? `${server} promoted\n` : `${server} did not promote within 60 seconds\n`);
      return promoted ? 0 : 1;
    });
  });

program
  .command('stop')
  .description('stop one server, or (without a server) the whole running topology')
  .argument('[server]', 'the server')
  .addOption(new Option('--mode <mode>', 'shutdown mode for one server').choices(['smart', 'fast', 'immediate']).default('fast'))
  .addOption(stateOption())
  .action(async (server: string | undefined, options: { state?: string; mode: 'smart' | 'fast' | 'immediate' }) => {
    const statePath = statePathOf(options.state);
    const before = readState(statePath);
    const request: ControlRequest = server === undefined ? { command: 'stop' } : { command: 'stop', server, mode: options.mode };
    process.exitCode = await command(statePath, request, false, io, () => {
      io.out(server === undefined ? 'stopping the topology\n' : `${server} stopped\n`);
      return 0;
    });
    if (server === undefined && process.exitCode === 0 && before !== null) {
      // Until the process has stopped every server (its state file goes then) and is gone.
      const deadline = performance.now() + 120_000;
      const running = (): boolean => readState(statePath) !== null || processAlive(before.pid);
      while (running() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      io.out(running() ? 'still stopping\n' : 'stopped\n');
    }
  });

for (const [name, description] of [['kill', 'kill a server of the running topology (immediate stop: no shutdown checkpoint)'], ['start', 'start a stopped server of the running topology']] as const) {
  program
    .command(name)
    .description(description)
    .argument('<server>', 'the server')
    .addOption(stateOption())
    .action(async (server: string, options: { state?: string }) => {
      process.exitCode = await command(statePathOf(options.state), { command: name, server }, false, io, () => {
        io.out(`${server} ${name === 'kill' ? 'killed' : 'started'}\n`);
        return 0;
      });
    });
}

program
  .command('rewind')
  .description('turn a stopped former primary into a standby of the new one, listing what it discards')
  .argument('<server>', 'the former primary (stopped)')
  .requiredOption('--source <server>', 'the new primary')
  .addOption(stateOption())
  .option('--json', 'the report as JSON')
  .action(async (server: string, options: { source: string; state?: string; json?: boolean }) => {
    process.exitCode = await command(statePathOf(options.state), { command: 'rewind', server, source: options.source }, options.json === true, io, (reply) => {
      const r = reply['report'] as { divergedAt: string; commonTimeline: number; sourceTimeline: number; discarded: { xid: number; commitLsn: string; acknowledged: boolean; level: string | null }[] };
      io.out(`servers diverged at WAL location ${r.divergedAt} on timeline ${r.commonTimeline}; ${server} now follows ${options.source} on timeline ${r.sourceTimeline}\n`);
      io.out(`${r.discarded.length} transaction(s) discarded\n`);
      for (const d of r.discarded) io.out(`  xid ${d.xid} committed at ${d.commitLsn}: ${d.acknowledged ? `acknowledged to its client (synchronous_commit = ${String(d.level)})` : 'never acknowledged'}\n`);
      return 0;
    });
  });

program
  .command('logs')
  .description("print a server's log (PostgreSQL's lines)")
  .argument('<server>', 'the server')
  .option('-f, --follow', 'keep printing what it writes, until Ctrl-C')
  .addOption(stateOption())
  .action(async (server: string, options: { follow?: boolean; state?: string }) => {
    process.exitCode = await logs(statePathOf(options.state), server, options.follow === true, io);
  });

/** An option parser whose mistakes commander reports as "option '--x' argument 'y' is invalid. <why>". */
function checked<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (err) {
      if (err instanceof OptionError) throw new InvalidArgumentError(err.message);
      throw err;
    }
  };
}

interface BenchFlags {
  clients: number[];
  duration?: RunLength;
  transactions?: RunLength;
  modes: SynchronousCommit[];
  standbyNames?: string[];
  standbys: number;
  placement: BenchOptions['placement'];
  mix: Mix;
  json?: string;
  svg?: string;
  comparePostgres?: boolean;
  dir?: string;
  progress: boolean;
}

program
  .command('bench')
  .description('measure commit latency and throughput at each synchronous_commit level on a primary with standbys')
  .addOption(new Option('--clients <list>', 'client counts to run, comma-separated').argParser(checked(parseClients)).default([...DEFAULT_OPTIONS.clients], DEFAULT_OPTIONS.clients.join(',')))
  .addOption(new Option('--duration <seconds>', `length of each run (default: ${DEFAULT_DURATION_SECONDS})`).argParser(checked(parseDuration)).conflicts('transactions'))
  .addOption(new Option('--transactions <n>', 'transactions per client in each run, instead of a duration').argParser(checked(parseTransactions)))
  .addOption(new Option('--modes <list>', 'synchronous_commit levels, comma-separated').argParser(checked(parseModes)).default([...DEFAULT_OPTIONS.modes], SYNCHRONOUS_COMMIT_LEVELS.join(',')))
  .option('--standby-names <value>', `a synchronous_standby_names value to run under; repeat for several (default: "${DEFAULT_STANDBY_NAMES}")`,
    (value: string, previous: string[] | undefined) => [...(previous ?? []), checked(parseStandbyNames)(value)])
  .option('--standbys <n>', 'number of standbys, named s1..sN', checked(parseStandbys), DEFAULT_OPTIONS.standbys)
  .addOption(new Option('--placement <where>', 'where the walship servers run').choices(PLACEMENTS).argParser(checked(parsePlacement)).default(DEFAULT_OPTIONS.placement))
  .addOption(new Option('--mix <name>', 'the transaction: insert (one new row) or update (a random preloaded row)').choices(MIXES).argParser(checked(parseMix)).default(DEFAULT_OPTIONS.mix))
  .option('--json <file>', 'write the results as JSON')
  .option('--svg <file>', 'write a latency chart (p50 and p99 per mode, log scale) as SVG')
  .option('--compare-postgres', "run the same topology and runs on PostgreSQL 15 (/usr/lib/postgresql/15/bin) with pgbench, side by side")
  .option('--dir <path>', 'where the data directories go (kept afterwards); default a temporary directory, removed at the end')
  .option('--no-progress', 'no progress bar (there is none anyway when stderr is not a terminal)')
  .action(async (flags: BenchFlags) => {
    const options: BenchOptions = {
      clients: flags.clients,
      length: flags.transactions ?? flags.duration ?? DEFAULT_OPTIONS.length,
      modes: flags.modes,
      standbyNames: flags.standbyNames ?? DEFAULT_OPTIONS.standbyNames,
      standbys: flags.standbys,
      placement: flags.placement,
      mix: flags.mix,
      ...(flags.json === undefined ? {} : { jsonFile: flags.json }),
      ...(flags.svg === undefined ? {} : { svgFile: flags.svg }),
      comparePostgres: flags.comparePostgres === true,
      ...(flags.dir === undefined ? {} : { dir: flags.dir }),
      progress: flags.progress,
    };
    try {
      await runBench(options, { print: (line) => console.log(line), note: (line) => console.error(line) });
    } catch (err) {
      console.error(`walship bench: error: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    }
  });

await program.parseAsync();
