#!/usr/bin/env node
/*
 * walship.ts — the command line. For now it has one command, `demo`, which shows the actor
 * runtime at work: a supervised tree spread over this thread, a worker thread and a child
 * process, messages crossing between them, a crash and its restart, and an orderly shutdown.
 * The replication demo replaces it once servers exist.
 */
import { Command } from 'commander';
import { runDemo } from './demo.js';

const program = new Command()
  .name('walship')
  .description("PostgreSQL's replication machinery as a supervised actor tree");

program
  .command('demo')
  .description('run a supervised actor tree across a thread, a worker thread and a child process')
  .option('--rounds <n>', 'request/reply rounds per placement', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new Error(`--rounds must be an integer from 1 to 1000000, got "${v}"`);
    return n;
  }, 2000)
  .action(async (options: { rounds: number }) => {
    await runDemo(options.rounds, (line) => console.log(line));
  });

await program.parseAsync();
