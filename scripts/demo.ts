/*
 * demo.ts — `walship demo`: the actor runtime end to end, printed as it happens.
 *
 * The tree: a one_for_one supervisor with three pongers, one per placement (inline, a
 * worker thread, a child process). A pinger plays request/reply rounds with each and the
 * demo prints the median round trip; then the thread-hosted ponger is made to crash and the
 * supervisor restarts it in a fresh worker thread; finally everything stops in reverse order.
 * It reuses the test fixtures' behaviours on purpose: it shows what the tests prove.
 */
import type { ActorRef, Placement } from '../src/runtime/actor.js';
import { formatEvent } from '../src/runtime/events.js';
import { Kernel } from '../src/runtime/kernel.js';
import '../src/runtime/placement.js';
import { supervisor, type Children } from '../src/runtime/supervisor.js';
import { PINGER, PONGER } from '../test/fixtures/actors.js';

const PLACEMENTS: readonly Placement[] = ['inline', 'thread', 'process'];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

export async function runDemo(rounds: number, print: (line: string) => void): Promise<void> {
  const kernel = new Kernel({ id: 'demo', onEvent: (event) => print(formatEvent(event)) });
  try {
    const sup = kernel.spawn(supervisor('demo-sup', {
      strategy: 'one_for_one',
      intensity: 3,
      periodMs: 10_000,
      children: PLACEMENTS.map((placement) => ({ name: `ponger-${placement}`, behaviour: PONGER, placement })),
    }));
    const inbox = kernel.inbox();
    const whichChildren = async (): Promise<Map<string, ActorRef | null>> => {
      const reply = await kernel.ask<Children>(sup, (replyTo) => ({ type: 'WhichChildren', replyTo }), 15_000);
      return new Map(reply.children.map((c) => [c.name, c.ref]));
    };
    await kernel.whenStarted(sup);
    let children = await whichChildren();
    for (const placement of PLACEMENTS) {
      const target = children.get(`ponger-${placement}`)!;
      kernel.spawn({ name: `pinger-${placement}`, behaviour: PINGER, args: { target, count: rounds, reportTo: inbox.ref, timed: true } });
      const done = await inbox.next<{ type: 'done'; times: number[] }>(60_000);
      print(`>>> ${placement}: ${rounds} request/reply rounds with ${target.node}/${target.id}, median ${(median(done.times) * 1000).toFixed(1)} µs`);
    }
    const victim = children.get('ponger-thread')!;
    print(`>>> crashing ${victim.node}/${victim.id}; its supervisor restarts it in a new worker thread`);
    kernel.send(victim, { type: 'crash' });
    const deadline = performance.now() + 15_000;
    while (children.get('ponger-thread')?.node === victim.node || children.get('ponger-thread') === null) {
      if (performance.now() > deadline) throw new Error('the crashed ponger was not restarted within 15 s');
      children = await whichChildren();
    }
    const restarted = children.get('ponger-thread')!;
    const pong = await kernel.ask<{ type: string }>(restarted, (replyTo) => ({ type: 'ping', n: 0, replyTo }), 15_000);
    print(`>>> restarted as ${restarted.node}/${restarted.id}; it answers: ${pong.type}`);
    print('>>> shutting down: children stop in reverse start order');
  } finally {
    await kernel.shutdown();
  }
}
