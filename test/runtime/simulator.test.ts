/*
 * The simulator: a seed decides the run. The same seed replays event for event; another seed
 * explores another interleaving; virtual time jumps instead of waiting.
 */
import { expect } from 'chai';
import type { ActorRef } from '../../src/runtime/actor.js';
import { Kernel } from '../../src/runtime/kernel.js';
import { offload } from '../../src/runtime/offload.js';
import { SimScheduler } from '../../src/runtime/simulator.js';
import { supervisor } from '../../src/runtime/supervisor.js';
import { defineBehaviour } from '../../src/runtime/actor.js';
import { PINGER, PONGER, RECORDER, SEQUENCER, SUM_BYTES, WORKER } from '../fixtures/actors.js';

/** A noisy actor: random timers, random ids, random crashes of a supervised worker. */
const CHAOS = defineBehaviour(import.meta.url, 'Chaos', (args: { victim: ActorRef; recorder: ActorRef }) => ({
  start(ctx) {
    ctx.after(Math.floor(ctx.random() * 50), { type: 'tick' });
  },
  receive(msg, ctx) {
    if (msg.type !== 'tick') return;
    ctx.send(args.recorder, { type: 'seq', tag: ctx.newId(), i: Math.floor(ctx.now()) });
    if (ctx.random() < 0.3) ctx.send(args.victim, { type: 'crash' });
    ctx.after(1 + Math.floor(ctx.random() * 50), { type: 'tick' });
  },
}));

function scenario(seed: number): { trace: string[]; hash: number; steps: number } {
  const sim = new SimScheduler({ seed });
  const kernel = new Kernel({ id: 'n1', scheduler: sim });
  const recorder = kernel.spawn({ name: 'recorder', behaviour: RECORDER });
  const sup = kernel.spawn(supervisor('sup', {
    strategy: 'one_for_one', intensity: 1000, periodMs: 1000,
    children: [{ name: 'victim', behaviour: WORKER, id: 'victim' }, { name: 'ponger', behaviour: PONGER, id: 'ponger' }],
  }));
  void sup;
  sim.run();
  const inbox = kernel.inbox();
  for (let i = 0; i < 3; i++) {
    kernel.spawn({ name: `pinger${i}`, behaviour: PINGER, args: { target: { node: 'n1', id: 'ponger' }, count: 20, reportTo: inbox.ref } });
    kernel.spawn({ name: `seq${i}`, behaviour: SEQUENCER, args: { target: recorder, count: 10, tag: `s${i}` } });
  }
  kernel.spawn({ name: 'chaos', behaviour: CHAOS, args: { victim: { node: 'n1', id: 'victim' }, recorder } });
  sim.run({ forMs: 2000 });
  return { trace: sim.trace, hash: sim.traceHash, steps: sim.steps };
}

describe('simulator', () => {
  it('replays the same run, step for step, from the same seed', () => {
    const a = scenario(42);
    const b = scenario(42);
    expect(a.steps).to.be.greaterThan(300);
    expect(b.trace).to.deep.equal(a.trace);
    expect(b.hash).to.equal(a.hash);
  });

  it('explores a different interleaving from a different seed', () => {
    const a = scenario(42);
    const c = scenario(43);
    expect(c.hash).to.not.equal(a.hash);
    expect(c.trace).to.not.deep.equal(a.trace);
  });

  it('keeps per-sender order while interleaving senders', () => {
    const sim = new SimScheduler({ seed: 7 });
    const kernel = new Kernel({ id: 'n', scheduler: sim });
    const recorder = kernel.spawn({ name: 'recorder', behaviour: RECORDER });
    for (const tag of ['a', 'b', 'c']) kernel.spawn({ name: tag, behaviour: SEQUENCER, args: { target: recorder, count: 200, tag } });
    sim.run();
    const inbox = kernel.inbox();
    kernel.send(recorder, { type: 'dump', replyTo: inbox.ref });
    sim.run();
    const seen = inbox.take<{ type: string; seen: { tag: string; i: number }[] }>()!.seen;
    for (const tag of ['a', 'b', 'c']) expect(seen.filter((s) => s.tag === tag).map((s) => s.i)).to.deep.equal([...Array(200).keys()]);
    const switches = seen.slice(1).filter((s, i) => s.tag !== seen[i]!.tag).length;
    expect(switches, 'the three senders interleave').to.be.greaterThan(50);
  });

  it('jumps the virtual clock to the next timer instead of waiting', () => {
    const sim = new SimScheduler({ seed: 1 });
    const kernel = new Kernel({ id: 'n', scheduler: sim });
    const ref = kernel.spawn(supervisor('sup', {
      strategy: 'one_for_one', children: [{ name: 'stuck', behaviour: WORKER, args: { ignoreStop: true }, shutdownMs: 3_600_000 }],
    }));
    sim.run();
    kernel.stop(ref);
    const wallStart = performance.now();
    sim.run();
    expect(sim.elapsedMs()).to.equal(3_600_000);
    expect(performance.now() - wallStart).to.be.lessThan(1000);
    expect(kernel.isAlive(ref)).to.equal(false);
  });

  it('runs offloaded tasks in-process with simulated latency, deterministically', () => {
    const results: unknown[] = [];
    const CALLER = defineBehaviour(import.meta.url, 'OffloadCaller', () => ({
      start(ctx) {
        ctx.io(offload(SUM_BYTES, new Uint8Array([1, 2, 3, 250])), 'Summed');
        ctx.io({ kind: 'no-such-io' }, 'Nothing');
      },
      receive(msg) {
        results.push(msg);
      },
    }));
    const sim = new SimScheduler({ seed: 3 });
    const kernel = new Kernel({ id: 'n', scheduler: sim });
    kernel.spawn({ name: 'caller', behaviour: CALLER });
    sim.run();
    expect(results).to.deep.include({ type: 'Summed', ok: true, value: 256 });
    expect(results).to.deep.include({ type: 'Nothing', ok: false, error: { message: 'no simulated I/O handler for "no-such-io"' } });
  });

  it('refuses thread and process placements, which cannot be simulated', () => {
    const sim = new SimScheduler({ seed: 1 });
    const kernel = new Kernel({ id: 'n', scheduler: sim });
    expect(() => kernel.spawn({ name: 'p', behaviour: PONGER, placement: 'thread' })).to.throw('placement "thread" is not available under simulation; use "inline"');
  });

  it('names nodes and ids from the seed', () => {
    const ids = (seed: number) => {
      const kernel = new Kernel({ scheduler: new SimScheduler({ seed }) });
      return [kernel.id, kernel.newId(), kernel.newId()];
    };
    expect(ids(5)).to.deep.equal(ids(5));
    expect(ids(5)).to.not.deep.equal(ids(6));
    expect(ids(5)[1]).to.match(/^[A-Za-z0-9_-]{12}$/);
  });
});
