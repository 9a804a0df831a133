/*
 * Supervision semantics under the simulator: strategies, restart types, intensity,
 * ordered start and reverse stop, shutdown timeouts, dynamic children. Virtual time makes
 * the timeouts exact and the runs instant; placement.test.ts runs the same kind of scenarios
 * on real threads and processes.
 */
import { expect } from 'chai';
import type { ActorRef, ActorSpec } from '../../src/runtime/actor.js';
import { Kernel } from '../../src/runtime/kernel.js';
import { SimScheduler } from '../../src/runtime/simulator.js';
import { supervisor, type ChildSpec, type Children, type SupervisorSpec } from '../../src/runtime/supervisor.js';
import { WORKER, type WorkerArgs } from '../fixtures/actors.js';
import { record, story } from '../helpers.js';

function worker(name: string, extra: Partial<ChildSpec> & { args?: WorkerArgs } = {}): ChildSpec {
  return { name, behaviour: WORKER, ...extra };
}

function simulated(seed = 1) {
  const sim = new SimScheduler({ seed });
  const kernel = new Kernel({ id: 'sim', scheduler: sim });
  const log = record(kernel);
  const run = () => sim.run();
  const start = (spec: ActorSpec) => {
    const ref = kernel.spawn(spec);
    run();
    return ref;
  };
  const inbox = kernel.inbox();
  /** The supervisor's children (name -> ref), read through WhichChildren. */
  const children = (sup: ActorRef): Map<string, ActorRef | null> => {
    kernel.send(sup, { type: 'WhichChildren', replyTo: inbox.ref });
    run();
    const reply = inbox.take<Children>();
    if (reply === undefined) throw new Error(`supervisor ${sup.id} did not answer WhichChildren`);
    return new Map(reply.children.map((c) => [c.name, c.ref]));
  };
  return { sim, kernel, log, run, start, children };
}

function sup(spec: Partial<SupervisorSpec> & { children: ChildSpec[] }): ActorSpec {
  return supervisor('sup', { strategy: 'one_for_one', intensity: 10, periodMs: 1000, ...spec });
}

const abc = () => [worker('a'), worker('b'), worker('c')];

describe('supervisor (simulated)', () => {
  it('starts children in order and stops them in reverse order', () => {
    const t = simulated();
    const ref = t.start(sup({ children: abc() }));
    expect(story(t.log.events)).to.deep.equal(['a:started', 'b:started', 'c:started', 'sup:started']);
    t.kernel.stop(ref);
    t.run();
    expect(story(t.log.events).slice(4)).to.deep.equal(['c:stopped', 'b:stopped', 'a:stopped', 'sup:stopped']);
  });

  it('one_for_one restarts only the crashed child', () => {
    const t = simulated();
    const ref = t.start(sup({ children: abc() }));
    const before = t.children(ref);
    t.kernel.send(before.get('b')!, { type: 'crash' });
    t.run();
    const after = t.children(ref);
    expect(story(t.log.events).slice(4)).to.deep.equal(['b:crashed', 'b:restarted']);
    expect(after.get('a')).to.deep.equal(before.get('a'));
    expect(after.get('c')).to.deep.equal(before.get('c'));
    expect(after.get('b')).to.not.deep.equal(before.get('b'));
    const crashed = t.log.lifecycle('b').find((e) => e.kind === 'crashed')!;
    expect(crashed.reason).to.deep.equal({ kind: 'crash', message: 'Error: crash requested by test' });
  });

  it('one_for_all stops the others in reverse order and restarts all in order', () => {
    const t = simulated();
    const ref = t.start(sup({ strategy: 'one_for_all', children: abc() }));
    t.kernel.send(t.children(ref).get('b')!, { type: 'crash' });
    t.run();
    expect(story(t.log.events).slice(4)).to.deep.equal([
      'b:crashed', 'c:stopped', 'a:stopped', 'a:restarted', 'b:restarted', 'c:restarted',
    ]);
  });

  it('rest_for_one restarts the crashed child and those started after it', () => {
    const t = simulated();
    const ref = t.start(sup({ strategy: 'rest_for_one', children: [...abc(), worker('d')] }));
    t.kernel.send(t.children(ref).get('b')!, { type: 'crash' });
    t.run();
    expect(story(t.log.events).slice(5)).to.deep.equal([
      'b:crashed', 'd:stopped', 'c:stopped', 'b:restarted', 'c:restarted', 'd:restarted',
    ]);
  });

  it('restarts transient children only after abnormal exits and never restarts temporary ones', () => {
    const t = simulated();
    const ref = t.start(sup({
      children: [worker('t1', { restart: 'transient' }), worker('t2', { restart: 'transient' }), worker('tmp', { restart: 'temporary' })],
    }));
    const refs = t.children(ref);
    t.kernel.send(refs.get('t1')!, { type: 'exit' });
    t.kernel.send(refs.get('t2')!, { type: 'crash' });
    t.kernel.send(refs.get('tmp')!, { type: 'crash' });
    t.run();
    const after = t.children(ref);
    expect(after.get('t1')).to.equal(null);
    expect(after.get('t2')).to.not.equal(null);
    expect(after.has('tmp')).to.equal(false);
    expect(story(t.log.events, ['t2'])).to.deep.equal(['t2:started', 't2:crashed', 't2:restarted']);
  });

  it('escalates when restarts exceed the intensity within the period', () => {
    const t = simulated();
    const inner = supervisor('inner', { strategy: 'one_for_one', intensity: 2, periodMs: 10_000, children: [worker('w')] });
    const outer = t.start(supervisor('outer', { strategy: 'one_for_one', intensity: 1, periodMs: 10_000, children: [inner] }));
    const innerRef = () => t.children(outer).get('inner')!;
    for (let i = 0; i < 3; i++) {
      t.kernel.send(t.children(innerRef()).get('w')!, { type: 'crash' });
      t.run();
    }
    const crashedInner = t.log.lifecycle('inner').find((e) => e.kind === 'crashed');
    expect(crashedInner?.reason).to.deep.include({ kind: 'crash' });
    expect((crashedInner!.reason as { message: string }).message).to.match(/^reached maximum restart intensity: more than 2 restarts in 10000 ms/);
    expect(story(t.log.events, ['inner'])).to.deep.equal(['inner:started', 'inner:crashed', 'inner:restarted']);
    // The restarted inner supervisor is a new instance: its child starts afresh.
    expect(story(t.log.events, ['w'])).to.deep.equal([
      'w:started', 'w:crashed', 'w:restarted', 'w:crashed', 'w:restarted', 'w:crashed', 'w:started',
    ]);
  });

  it('counts only the restarts inside the period', () => {
    const t = simulated();
    const ref = t.start(sup({ intensity: 1, periodMs: 1000, children: [worker('w')] }));
    for (let i = 0; i < 4; i++) {
      t.kernel.send(t.children(ref).get('w')!, { type: 'crash' });
      t.run();
      t.sim.run({ forMs: 1500 });
    }
    expect(t.log.lifecycle('sup').map((e) => e.kind)).to.deep.equal(['started']);
    expect(t.log.lifecycle('w').filter((e) => e.kind === 'restarted')).to.have.length(4);
  });

  it('fails its own start when a child fails to start, stopping the children already started', () => {
    const t = simulated();
    t.start(sup({ children: [worker('a'), worker('b', { args: { failStart: true } }), worker('c')] }));
    expect(story(t.log.events)).to.deep.equal(['a:started', 'b:crashed', 'a:stopped', 'sup:crashed']);
    const reason = t.log.lifecycle('sup')[0]!.reason as { message: string };
    expect(reason.message).to.equal('failed to start child b: failed to start: Error: start refused by test');
  });

  it('waits for a draining child and kills one that overruns its shutdown timeout', () => {
    const t = simulated();
    const ref = t.start(sup({
      children: [worker('slow', { args: { drainMs: 300 }, shutdownMs: 1000 }), worker('stuck', { args: { ignoreStop: true }, shutdownMs: 500 })],
    }));
    const stoppedAt = t.sim.elapsedMs();
    t.kernel.stop(ref);
    t.run();
    const stuck = t.log.lifecycle('stuck').at(-1)!;
    const slow = t.log.lifecycle('slow').at(-1)!;
    expect(stuck.reason).to.deep.equal({ kind: 'killed' });
    expect(stuck.at - stoppedAt - Date.UTC(2026, 0, 1)).to.equal(500);
    expect(slow.reason).to.deep.equal({ kind: 'shutdown' });
    expect(slow.at - stuck.at).to.equal(300);
    expect(story(t.log.events).slice(3)).to.deep.equal(['stuck:stopped', 'slow:stopped', 'sup:stopped']);
  });

  it('does not count siblings that exit while already being restarted with the crashed child', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const t = simulated(seed);
      const ref = t.start(sup({ strategy: 'one_for_all', intensity: 1, children: abc() }));
      for (const child of t.children(ref).values()) t.kernel.send(child!, { type: 'crash' });
      t.run();
      expect(t.log.lifecycle('sup').map((e) => e.kind), `seed ${seed}`).to.deep.equal(['started']);
      expect([...t.children(ref).values()].every((r) => r !== null), `seed ${seed}: all running again`).to.equal(true);
    }
  });

  it('forgets a dynamic child whose first start fails and tells the asker', () => {
    const t = simulated();
    const ref = t.start(sup({ intensity: 1, children: [worker('a')] }));
    const inbox = t.kernel.inbox();
    t.kernel.send(ref, { type: 'StartChild', spec: worker('bad', { args: { failStart: true } }), replyTo: inbox.ref });
    t.run();
    expect(inbox.take()).to.deep.include({ type: 'ChildStartFailed', name: 'bad' });
    expect([...t.children(ref).keys()]).to.deep.equal(['a']);
    expect(t.log.lifecycle('sup').map((e) => e.kind)).to.deep.equal(['started']);
  });

  it('adds and removes dynamic children', () => {
    const t = simulated();
    const ref = t.start(sup({ children: [worker('a')] }));
    t.kernel.send(ref, { type: 'StartChild', spec: worker('backend-1', { restart: 'temporary' }) });
    t.kernel.send(ref, { type: 'StartChild', spec: worker('backend-2', { restart: 'temporary' }) });
    t.run();
    expect([...t.children(ref).keys()]).to.deep.equal(['a', 'backend-1', 'backend-2']);
    t.kernel.send(ref, { type: 'TerminateChild', name: 'backend-1' });
    t.run();
    expect([...t.children(ref).keys()]).to.deep.equal(['a', 'backend-2']);
    expect(story(t.log.events, ['backend-1'])).to.deep.equal(['backend-1:started', 'backend-1:stopped']);
  });
});
