/*
 * roundtrip.ts — actor request/reply round trip per placement, against the raw mechanism
 * measured in the same run.
 *
 *   inline   pinger and ponger in one thread                      (target: median < 5 µs)
 *   thread   ponger in a worker thread   vs  bare postMessage echo (target: <= 1.5x)
 *   process  ponger in a child process   vs  bare TCP echo         (target: <= 1.5x)
 *
 * Each comparison alternates raw and actor runs (A B A B ...) because these machines are
 * noisy, and reports the median of the per-pair ratios of medians. Timing is per round trip.
 * Usage: node dist/bench/roundtrip.js [--rounds N] [--pairs P] [--json]
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { once } from 'node:events';
import { MessageChannel, Worker, type MessagePort as NodeMessagePort } from 'node:worker_threads';
import { cpus } from 'node:os';
import type { ActorRef, Placement } from '../src/runtime/actor.js';
import { Kernel } from '../src/runtime/kernel.js';
import '../src/runtime/placement.js';
import { PINGER, PONGER } from '../test/fixtures/actors.js';
import { numberArg } from './args.js';

const ROUNDS = numberArg('rounds', 5000);
const PAIRS = numberArg('pairs', 5);
const WARMUP = 500;

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;
}

interface Sample { median: number; p99: number }
function sample(timesMs: number[]): Sample {
  const us = timesMs.slice(WARMUP).map((t) => t * 1000);
  return { median: quantile(us, 0.5), p99: quantile(us, 0.99) };
}

async function actorRounds(kernel: Kernel, target: ActorRef): Promise<Sample> {
  const inbox = kernel.inbox();
  kernel.spawn({ name: 'pinger', behaviour: PINGER, args: { target, count: ROUNDS + WARMUP, reportTo: inbox.ref, timed: true } });
  const done = await inbox.next<{ type: 'done'; times: number[] }>(120_000);
  inbox.close();
  return sample(done.times);
}

async function rawPortRounds(p: NodeMessagePort): Promise<Sample> {
  const times: number[] = [];
  for (let i = 0; i < ROUNDS + WARMUP; i++) {
    const t0 = performance.now();
    p.postMessage({ type: 'ping', n: i });
    await once(p, 'message');
    times.push(performance.now() - t0);
  }
  return sample(times);
}

async function rawTcpRounds(socket: import('node:net').Socket): Promise<Sample> {
  const times: number[] = [];
  const payload = Buffer.alloc(64, 7);
  for (let i = 0; i < ROUNDS + WARMUP; i++) {
    const t0 = performance.now();
    socket.write(payload);
    let got = 0;
    while (got < payload.length) got += ((await once(socket, 'data')) as [Buffer])[0].length;
    times.push(performance.now() - t0);
  }
  return sample(times);
}

interface Comparison { placement: Placement; raw: Sample[]; actor: Sample[]; ratio: number }

async function compare(placement: 'thread' | 'process', kernel: Kernel, target: ActorRef, raw: () => Promise<Sample>): Promise<Comparison> {
  const rawRuns: Sample[] = [];
  const actorRuns: Sample[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < PAIRS; i++) {
    const r = await raw();
    const a = await actorRounds(kernel, target);
    rawRuns.push(r);
    actorRuns.push(a);
    ratios.push(a.median / r.median);
  }
  return { placement, raw: rawRuns, actor: actorRuns, ratio: quantile(ratios, 0.5) };
}

const fmt = (n: number) => n.toFixed(1).padStart(7);
const medianOf = (runs: Sample[], key: keyof Sample) => quantile(runs.map((r) => r[key]), 0.5);

async function main(): Promise<void> {
  const kernel = new Kernel({ id: 'bench' });
  const results: Record<string, unknown> = { machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`, node: process.version, rounds: ROUNDS, pairs: PAIRS };
  try {
    // inline
    const inlinePonger = kernel.spawn({ name: 'ponger', behaviour: PONGER });
    const inlineRuns: Sample[] = [];
    for (let i = 0; i < PAIRS; i++) inlineRuns.push(await actorRounds(kernel, inlinePonger));
    results['inline'] = { median: medianOf(inlineRuns, 'median'), p99: medianOf(inlineRuns, 'p99') };

    // thread: raw echo worker vs placed ponger
    const channel = new MessageChannel();
    const echo = new Worker(new URL('./raw-echo.js', import.meta.url), { workerData: { port: channel.port2 }, transferList: [channel.port2] });
    await once(echo, 'message');
    const threadPonger = kernel.spawn({ name: 'ponger', behaviour: PONGER, placement: 'thread' });
    await kernel.ask(threadPonger, (replyTo) => ({ type: 'ping', n: 0, replyTo }), 10_000);
    const thread = await compare('thread', kernel, threadPonger, () => rawPortRounds(channel.port1));
    channel.port1.close();
    await echo.terminate();

    // process: raw TCP echo process vs placed ponger
    const child = spawn(process.execPath, [new URL('./raw-echo.js', import.meta.url).pathname, 'tcp'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const socket = connect(Number(line.toString().trim()), '127.0.0.1');
    socket.setNoDelay(true);
    await once(socket, 'connect');
    const processPonger = kernel.spawn({ name: 'ponger', behaviour: PONGER, placement: 'process' });
    await kernel.ask(processPonger, (replyTo) => ({ type: 'ping', n: 0, replyTo }), 10_000);
    const proc = await compare('process', kernel, processPonger, () => rawTcpRounds(socket));
    socket.destroy();
    child.stdin!.end();

    for (const c of [thread, proc]) {
      results[c.placement] = {
        rawMedian: medianOf(c.raw, 'median'), rawP99: medianOf(c.raw, 'p99'),
        actorMedian: medianOf(c.actor, 'median'), actorP99: medianOf(c.actor, 'p99'),
        ratio: c.ratio,
      };
    }
    if (process.argv.includes('--json')) {
      console.log(JSON.stringify(results, null, 2));
      return;
    }
    const inline = results['inline'] as Sample;
    console.log(`machine: ${results['machine']}, node ${process.version}; ${ROUNDS} round trips per run, ${PAIRS} alternating pairs`);
    console.log('placement   raw p50   raw p99   actor p50 actor p99   ratio (median of per-pair p50 ratios)');
    console.log(`inline            -         - ${fmt(inline.median)}   ${fmt(inline.p99)}       -  (target p50 < 5 µs)`);
    for (const c of [thread, proc]) {
      console.log(`${c.placement.padEnd(9)} ${fmt(medianOf(c.raw, 'median'))}   ${fmt(medianOf(c.raw, 'p99'))}   ${fmt(medianOf(c.actor, 'median'))}   ${fmt(medianOf(c.actor, 'p99'))}   ${c.ratio.toFixed(2)}x (target <= 1.5x)`);
    }
  } finally {
    await kernel.shutdown();
  }
}

await main();
