/*
 * The same scenarios in all three placements, on the real scheduler: ping-pong, message
 * order, each supervision strategy, ordered start and reverse stop, intensity escalation.
 * In `thread` and `process` every supervised child is a subtree in its own worker thread or
 * child process, addressed by the same kind of ref as a local actor. Process placement adds
 * a real `kill -9`.
 */
import { expect } from 'chai';
import type { ActorRef, ActorSpec, Placement } from '../../src/runtime/actor.js';
import { Kernel } from '../../src/runtime/kernel.js';
import '../../src/runtime/placement.js';
import { supervisor, type ChildSpec, type Children, type Strategy } from '../../src/runtime/supervisor.js';
import { PINGER, PONGER, RECORDER, SEQUENCER, WORKER } from '../fixtures/actors.js';
import { record, story, until } from '../helpers.js';

const placements: readonly Placement[] = ['inline', 'thread', 'process'];

for (const placement of placements) {
  describe(`scenarios in the ${placement} placement`, function () {
    this.timeout(30_000);
    let kernel: Kernel;
    let log: ReturnType<typeof record>;

    beforeEach(() => {
      kernel = new Kernel();
      log = record(kernel);
    });
    afterEach(async () => {
      await kernel.shutdown();
    });

    const worker = (name: string): ChildSpec => ({ name, behaviour: WORKER, placement });

    async function children(sup: ActorRef): Promise<Map<string, ActorRef | null>> {
      const reply = await kernel.ask<Children>(sup, (replyTo) => ({ type: 'WhichChildren', replyTo }), 10_000);
      return new Map(reply.children.map((c) => [c.name, c.ref]));
    }

    async function startSupervisor(strategy: Strategy, names: string[], intensity = 10): Promise<ActorRef> {
      const ref = kernel.spawn(supervisor('sup', { strategy, intensity, periodMs: 60_000, children: names.map(worker) }));
      await until(() => log.lifecycle('sup').length > 0, 'the supervisor to start');
      expect(log.lifecycle('sup')[0]!.kind).to.equal('started');
      return ref;
    }

    it('plays ping-pong with a remote actor addressed like a local one', async () => {
      const ponger = kernel.spawn({ name: 'ponger', behaviour: PONGER, placement });
      if (placement !== 'inline') expect(ponger.node).to.not.equal(kernel.id);
      const inbox = kernel.inbox();
      kernel.spawn({ name: 'pinger', behaviour: PINGER, args: { target: ponger, count: 300, reportTo: inbox.ref } });
      const done = await inbox.next<{ type: string; rounds: number }>(20_000);
      expect(done).to.deep.include({ type: 'done', rounds: 300 });
      const payload = new Uint8Array(100_000).map((_, i) => i % 251);
      const pong = await kernel.ask<{ type: string; payload: Uint8Array }>(ponger, (replyTo) => ({ type: 'ping', n: 7, replyTo, payload }), 10_000);
      expect(Buffer.from(pong.payload).equals(Buffer.from(payload))).to.equal(true);
    });

    it('keeps the order of messages from one sender to one receiver', async () => {
      const recorder = kernel.spawn({ name: 'recorder', behaviour: RECORDER, placement });
      for (const tag of ['x', 'y']) kernel.spawn({ name: `seq-${tag}`, behaviour: SEQUENCER, args: { target: recorder, count: 2000, tag } });
      let seen: { tag: string; i: number }[] = [];
      const deadline = performance.now() + 20_000;
      while (seen.length < 4000 && performance.now() < deadline) {
        seen = (await kernel.ask<{ type: string; seen: typeof seen }>(recorder, (replyTo) => ({ type: 'dump', replyTo }), 10_000)).seen;
      }
      for (const tag of ['x', 'y']) {
        const order = seen.filter((s) => s.tag === tag).map((s) => s.i);
        expect(order).to.deep.equal(Array.from({ length: 2000 }, (_, i) => i));
      }
    });

    it('delivers messages sent before a placed actor is up, even when it is stopped right after', async () => {
      const inbox = kernel.inbox();
      const ponger = kernel.spawn({ name: 'ponger', behaviour: PONGER, placement });
      for (let n = 0; n < 200; n++) kernel.send(ponger, { type: 'ping', n, replyTo: inbox.ref });
      kernel.stop(ponger);
      expect(await kernel.whenExited(ponger)).to.deep.equal({ kind: 'shutdown' });
      const pongs: number[] = [];
      for (let n = 0; n < 200; n++) pongs.push((await inbox.next<{ type: string; n: number }>(5000)).n);
      expect(pongs).to.deep.equal([...Array(200).keys()]);
    });

    it('reports a placed actor killed before its host is up as killed, and shuts down cleanly', async () => {
      const ponger = kernel.spawn({ name: 'ponger', behaviour: PONGER, placement });
      kernel.stop(ponger, { kind: 'killed' });
      expect(await kernel.whenExited(ponger)).to.deep.equal({ kind: 'killed' });
      kernel.spawn({ name: 'ponger', behaviour: PONGER, placement });
      // afterEach shuts down with this second one still starting: that must not hang.
    });

    it('starts children in order and stops them in reverse order', async () => {
      const sup = await startSupervisor('one_for_one', ['a', 'b', 'c']);
      expect(story(log.events)).to.deep.equal(['a:started', 'b:started', 'c:started', 'sup:started']);
      kernel.stop(sup);
      await kernel.whenExited(sup);
      expect(story(log.events).slice(4)).to.deep.equal(['c:stopped', 'b:stopped', 'a:stopped', 'sup:stopped']);
    });

    it('one_for_one restarts only the crashed child', async () => {
      const sup = await startSupervisor('one_for_one', ['a', 'b', 'c']);
      const before = await children(sup);
      kernel.send(before.get('b')!, { type: 'crash' });
      await until(() => log.lifecycle('b').some((e) => e.kind === 'restarted'), 'b to restart');
      const after = await children(sup);
      expect(after.get('a')).to.deep.equal(before.get('a'));
      expect(after.get('c')).to.deep.equal(before.get('c'));
      expect(after.get('b')).to.not.deep.equal(before.get('b'));
      expect(story(log.events).slice(4)).to.deep.equal(['b:crashed', 'b:restarted']);
      expect(log.lifecycle('b')[1]!.reason).to.deep.equal({ kind: 'crash', message: 'Error: crash requested by test' });
    });

    it('one_for_all restarts every child, stopping the others in reverse order', async () => {
      const sup = await startSupervisor('one_for_all', ['a', 'b', 'c']);
      kernel.send((await children(sup)).get('b')!, { type: 'crash' });
      await until(() => log.lifecycle('c').some((e) => e.kind === 'restarted'), 'c to restart');
      expect(story(log.events).slice(4)).to.deep.equal(['b:crashed', 'c:stopped', 'a:stopped', 'a:restarted', 'b:restarted', 'c:restarted']);
    });

    it('rest_for_one restarts the crashed child and the ones after it', async () => {
      const sup = await startSupervisor('rest_for_one', ['a', 'b', 'c']);
      const before = await children(sup);
      kernel.send(before.get('b')!, { type: 'crash' });
      await until(() => log.lifecycle('c').some((e) => e.kind === 'restarted'), 'c to restart');
      expect(story(log.events).slice(4)).to.deep.equal(['b:crashed', 'c:stopped', 'b:restarted', 'c:restarted']);
      expect((await children(sup)).get('a')).to.deep.equal(before.get('a'));
    });

    it('escalates past the restart intensity to the parent supervisor', async () => {
      const inner: ActorSpec = supervisor('inner', { strategy: 'one_for_one', intensity: 1, periodMs: 60_000, children: [worker('w')] });
      const outer = kernel.spawn(supervisor('outer', { strategy: 'one_for_one', intensity: 5, periodMs: 60_000, children: [inner] }));
      await until(() => log.lifecycle('outer').length > 0, 'outer to start');
      const innerRef = (await children(outer)).get('inner')!;
      kernel.send((await children(innerRef)).get('w')!, { type: 'crash' });
      await until(() => log.lifecycle('w').some((e) => e.kind === 'restarted'), 'w to restart once');
      kernel.send((await children(innerRef)).get('w')!, { type: 'crash' });
      await until(() => log.lifecycle('inner').some((e) => e.kind === 'restarted'), 'inner to be restarted by outer');
      const crashed = log.lifecycle('inner').find((e) => e.kind === 'crashed')!;
      expect((crashed.reason as { message: string }).message).to.match(/^reached maximum restart intensity: more than 1 restarts in 60000 ms/);
      await until(() => log.lifecycle('w').at(-1)?.kind === 'started', 'w to start under the new inner supervisor');
    });
  });
}

describe('process placement under kill -9', function () {
  this.timeout(30_000);
  it('sees the killed process as a crash with its signal and restarts it', async () => {
    const kernel = new Kernel();
    const log = record(kernel);
    try {
      const sup = kernel.spawn(supervisor('sup', {
        strategy: 'one_for_one', intensity: 3, periodMs: 60_000,
        children: [{ name: 'victim', behaviour: PONGER, placement: 'process' }],
      }));
      await until(() => log.lifecycle('sup').length > 0, 'the supervisor to start');
      const first = (await kernel.ask<Children>(sup, (replyTo) => ({ type: 'WhichChildren', replyTo }), 5000)).children[0]!.ref!;
      await until(() => kernel.placementOf(first)?.pid !== undefined, 'the pid of the victim');
      const pid = kernel.placementOf(first)!.pid!;
      expect(pid).to.not.equal(process.pid);
      process.kill(pid, 'SIGKILL');
      await until(() => log.lifecycle('victim').some((e) => e.kind === 'restarted'), 'the victim to restart');
      const crashed = log.lifecycle('victim').find((e) => e.kind === 'crashed')!;
      expect(crashed.reason).to.deep.equal({ kind: 'crash', message: `process ${pid} was terminated by signal SIGKILL` });
      const second = (await kernel.ask<Children>(sup, (replyTo) => ({ type: 'WhichChildren', replyTo }), 5000)).children[0]!.ref!;
      expect(second.node).to.not.equal(first.node);
      const pong = await kernel.ask<{ type: string; n: number }>(second, (replyTo) => ({ type: 'ping', n: 1, replyTo }), 5000);
      expect(pong).to.deep.include({ type: 'pong', n: 1 });
      expect(kernel.placementOf(second)!.pid).to.not.equal(pid);
    } finally {
      await kernel.shutdown();
    }
  });
});
