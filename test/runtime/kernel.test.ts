/*
 * The kernel: crashes become exits, a parent takes its children and timers with it,
 * mailboxes are bounded, I/O and offloaded work come back as messages, and code awaiting
 * actors in a loop cannot starve the event loop.
 */
import { expect } from 'chai';
import { defineBehaviour, type ActorRef, type Message } from '../../src/runtime/actor.js';
import { MAILBOX_LIMIT } from '../../src/constants.js';
import { Kernel } from '../../src/runtime/kernel.js';
import { offload } from '../../src/runtime/offload.js';
import '../../src/runtime/placement.js';
import { SimScheduler } from '../../src/runtime/simulator.js';
import { PONGER, RECORDER, SUM_BYTES, WORKER } from '../fixtures/actors.js';
import { record, story, until } from '../helpers.js';

const seen: Message[] = [];

/** Spawns a worker child and a recurring timer; reports what it hears to `seen`. */
const PARENT = defineBehaviour(import.meta.url, 'Parent', () => ({
  start(ctx) {
    ctx.spawn({ name: 'child', behaviour: WORKER });
    ctx.after(10, { type: 'tick' });
  },
  receive(msg: Message & { target?: ActorRef }, ctx) {
    seen.push(msg);
    if (msg.type === 'tick') ctx.after(10, { type: 'tick' });
    if (msg.type === 'crash') throw new Error('parent crashed on purpose');
    if (msg.type === 'forward') ctx.send(msg.target!, { type: 'crash' });
  },
}));

function sim(seed = 1) {
  const scheduler = new SimScheduler({ seed });
  const kernel = new Kernel({ id: 'k', scheduler });
  return { scheduler, kernel, log: record(kernel) };
}

describe('kernel', () => {
  beforeEach(() => {
    seen.length = 0;
  });

  it('turns a thrown error into a crash reported to the parent as $exit', () => {
    const { scheduler, kernel, log } = sim();
    kernel.spawn({ name: 'parent', behaviour: PARENT });
    scheduler.run({ forMs: 5 });
    const child = log.lifecycle('child')[0]!.ref;
    kernel.send({ node: 'k', id: log.lifecycle('parent')[0]!.ref.id }, { type: 'forward', target: child });
    scheduler.run({ forMs: 5 });
    const exit = seen.find((m) => m.type === '$exit') as unknown as { ref: ActorRef; reason: unknown };
    expect(exit.ref).to.deep.equal(child);
    expect(exit.reason).to.deep.equal({ kind: 'crash', message: 'Error: crash requested by test' });
  });

  it('takes a crashed actor\'s children and timers with it', () => {
    const { scheduler, kernel, log } = sim();
    const parent = kernel.spawn({ name: 'parent', behaviour: PARENT });
    scheduler.run({ forMs: 35 });
    const ticks = seen.filter((m) => m.type === 'tick').length;
    expect(ticks).to.equal(3);
    kernel.send(parent, { type: 'crash' });
    scheduler.run({ forMs: 1000 });
    expect(seen.filter((m) => m.type === 'tick').length).to.equal(ticks);
    expect(story(log.events)).to.deep.equal(['child:started', 'parent:started', 'child:stopped', 'parent:crashed']);
    expect(log.lifecycle('child')[1]!.reason).to.deep.equal({ kind: 'killed' });
    expect(kernel.isAlive(parent)).to.equal(false);
  });

  it('bounds mailboxes: a send to a full mailbox is refused and logged', () => {
    const { scheduler, kernel, log } = sim();
    const recorder = kernel.spawn({ name: 'recorder', behaviour: RECORDER });
    for (let i = 0; i < MAILBOX_LIMIT; i++) expect(kernel.send(recorder, { type: 'seq', tag: 'x', i })).to.equal(true);
    expect(kernel.send(recorder, { type: 'seq', tag: 'x', i: MAILBOX_LIMIT })).to.equal(false);
    const warning = log.events.find((e) => e.kind === 'log' && e.level === 'warning');
    expect(warning && 'text' in warning ? warning.text : '').to.equal(
      `mailbox of recorder (k/recorder.1) is full at ${MAILBOX_LIMIT} messages; dropped a "seq" message`);
    scheduler.run();
    expect(kernel.send(recorder, { type: 'seq', tag: 'x', i: 0 }), 'room again once drained').to.equal(true);
  });

  it('refuses a send to an actor that does not exist', () => {
    const { kernel } = sim();
    expect(kernel.send({ node: 'k', id: 'nobody' }, { type: 'hello' })).to.equal(false);
    expect(kernel.send({ node: 'elsewhere', id: 'nobody' }, { type: 'hello' })).to.equal(false);
  });

  it('returns offloaded work from the piscina pool as a message', async () => {
    const kernel = new Kernel();
    const results: Message[] = [];
    const CALLER = defineBehaviour(import.meta.url, 'RealOffloadCaller', () => ({
      start(ctx) {
        ctx.io(offload(SUM_BYTES, new Uint8Array(1000).fill(3)), 'Summed');
        ctx.io({ kind: 'no-such-io' }, 'Nothing');
      },
      receive(msg) {
        results.push(msg);
      },
    }));
    try {
      kernel.spawn({ name: 'caller', behaviour: CALLER });
      await until(() => results.length === 2, 'both I/O results');
      expect(results).to.deep.include({ type: 'Summed', ok: true, value: 3000 });
      expect(results).to.deep.include({ type: 'Nothing', ok: false, error: { message: 'no I/O handler is registered for "no-such-io"' } });
    } finally {
      await kernel.shutdown();
    }
  });

  it('does not let a caller awaiting replies in a loop starve timers and ports', async () => {
    const kernel = new Kernel();
    try {
      const ponger = kernel.spawn({ name: 'ponger', behaviour: PONGER });
      let fired = false;
      setTimeout(() => { fired = true; }, 0);
      let asks = 0;
      while (!fired && asks < 100_000) {
        await kernel.ask(ponger, (replyTo) => ({ type: 'ping', n: asks, replyTo }), 1000);
        asks++;
      }
      expect(fired).to.equal(true);
      expect(asks).to.be.lessThan(100_000);
    } finally {
      await kernel.shutdown();
    }
  });

  it('reports a behaviour whose module cannot be loaded as a crash, in every placement', async function () {
    this.timeout(20_000);
    const kernel = new Kernel();
    const log = record(kernel);
    try {
      const missing = { module: new URL('./no-such-module.js', import.meta.url).href, name: 'Ghost' };
      for (const placement of ['inline', 'thread', 'process'] as const) {
        const ref = kernel.spawn({ name: `ghost-${placement}`, behaviour: missing, placement });
        const reason = await kernel.whenExited(ref);
        expect(reason.kind).to.equal('crash');
        expect((reason as { message: string }).message).to.contain('cannot load behaviour "Ghost"');
      }
      expect(log.lifecycle().map((e) => e.kind)).to.deep.equal(['crashed', 'crashed', 'crashed']);
    } finally {
      await kernel.shutdown();
    }
  });
});
