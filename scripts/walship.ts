#!/usr/bin/env node
/*
 * walship.ts — the command line. For now it has one command, `demo`: the actor runtime at
 * work (a supervised tree over this thread, a worker thread and a child process, a crash and
 * its restart), then one server committing, being killed and recovering. The replication
 * demo extends it once standbys exist.
 */
import { Command } from 'commander';
import { runDemo } from './demo.js';
import { runServerDemo } from './server-demo.js';

const program = new Command()
  .name('walship')
  .description("PostgreSQL's replication machinery as a supervised actor tree");

program
  .command('demo')
  .description('show the actor runtime across placements, then a server committing, crashing and recovering')
  .option('--rounds <n>', 'request/reply rounds per placement', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new Error(`--rounds must be an integer from 1 to 1000000, got "${v}"`);
    return n;
  }, 2000)
  .action(async (options: { rounds: number }) => {
    await runDemo(options.rounds, (line) => console.log(line));
    await runServerDemo((line) => console.log(line));
  });

await program.parseAsync();
