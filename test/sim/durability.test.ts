/*
 * The durability promise, under the simulator: whole servers (postmaster, shmem,
 * startup, walwriter, checkpointer, backends) on a SimDisk, several clients inserting rows
 * one commit each, power cuts at seeded random moments that drop (or tear) everything not
 * fsynced, crash recovery, more work, another cut. After every recovery each acknowledged
 * commit under synchronous_commit = local is there, nothing unacknowledged is half there
 * (rows are whole or absent, and each client's rows form a gap-free prefix), and under off
 * only the last wal_writer_delay can be lost.
 */
import { expect } from 'chai';
import { POSTMASTER, type PostmasterArgs } from '../../src/actors/postmaster.js';
import type { ActorRef } from '../../src/runtime/actor.js';
import { Kernel, type Inbox } from '../../src/runtime/kernel.js';
import { seededRandom } from '../../src/runtime/prng.js';
import { SimDisk } from '../../src/runtime/simdisk.js';
import { SimScheduler } from '../../src/runtime/simulator.js';
import { SQL_READER, SQL_WRITER, type QueryRows, type RowAcked } from '../fixtures/sql-clients.js';

const SEG = 1024 * 1024;
const DELAY_MS = 20;

function postmasterArgs(initdb: boolean): PostmasterArgs {
  return {
    name: 'primary', dataDir: '/data', initdb, walSegmentSize: SEG, options: {},
    postgresqlConf: `wal_writer_delay = '${DELAY_MS}ms'\ncheckpoint_timeout = '30s'\n`,
  };
}

interface Life {
  readonly sim: SimScheduler;
  readonly kernel: Kernel;
  readonly postmaster: ActorRef;
  readonly ledger: Inbox;
}

/** Starts a server on `disk` and runs the simulation until it accepts connections. */
function boot(disk: SimDisk, seed: number, initdb: boolean): Life {
  const sim = new SimScheduler({ seed, io: disk.handlers(), keepTrace: false });
  const kernel = new Kernel({ id: 'sim', scheduler: sim });
  const postmaster = kernel.spawn({ name: 'primary/postmaster', behaviour: POSTMASTER, args: postmasterArgs(initdb) });
  let ready = false;
  kernel.onEvent((e) => {
    if (e.kind === 'started' && e.name === 'primary/postmaster') ready = true;
    if (e.kind === 'crashed') throw new Error(`${e.name} crashed: ${JSON.stringify(e.reason)}`);
  });
  const ledger = kernel.inbox('ledger');
  sim.run({ until: () => ready, maxSteps: 2_000_000 });
  if (!ready) throw new Error('the server did not start');
  return { sim, kernel, postmaster, ledger };
}

function query(life: Life, sql: string): QueryRows {
  life.kernel.spawn({ name: 'reader', behaviour: SQL_READER, args: { postmaster: life.postmaster, ledger: life.ledger.ref, sql } });
  let reply: QueryRows | undefined;
  life.sim.run({ until: () => (reply = life.ledger.take<QueryRows>()) !== undefined, maxSteps: 2_000_000 });
  if (reply === undefined) throw new Error(`no answer to ${sql}`);
  return reply;
}

describe('server durability (simulated power cuts)', function () {
  this.timeout(120_000);

  it('keeps every acknowledged local commit across 160 crashes and recoveries', () => {
    let kills = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const disk = new SimDisk();
      const rng = seededRandom(seed);
      const acked = new Set<number>();
      let totalRows = 0;
      let setup = boot(disk, seed * 1000, true);
      expect(query(setup, 'CREATE TABLE kv (id int PRIMARY KEY, v text NOT NULL)').ok, `seed ${seed}: create table`).to.equal(true);
      for (let life = 0; life < 4; life++) {
        const current = setup;
        for (let client = 0; client < 3; client++) {
          current.kernel.spawn({
            name: `writer${client}`, behaviour: SQL_WRITER,
            args: { postmaster: current.postmaster, ledger: current.ledger.ref, client, firstId: (life * 10 + client) * 100_000, synchronousCommit: 'local', maxThinkMs: rng() * 3 },
          });
        }
        current.sim.run({ forMs: 2 + rng() * 40, maxSteps: 5_000_000 });
        for (let m = current.ledger.take<RowAcked>(); m !== undefined; m = current.ledger.take<RowAcked>()) {
          if (m.type === 'RowAcked') acked.add(m.id);
        }
        disk.crash(rng, rng() < 0.5 ? 'lose' : 'torn');
        kills++;
        const after = boot(disk, seed * 1000 + 100 + life, false);
        const rows = query(after, 'SELECT id, v FROM kv');
        expect(rows.ok, `seed ${seed} life ${life}: ${rows.error}`).to.equal(true);
        const present = new Set(rows.rows.map((r) => r['id'] as number));
        const lost = [...acked].filter((id) => !present.has(id));
        expect(lost, `seed ${seed} life ${life}: acknowledged commits lost`).to.deep.equal([]);
        for (const r of rows.rows) expect(r['v'], 'rows are whole').to.match(/^client \d$/);
        totalRows = Math.max(totalRows, present.size);
        setup = after;
      }
      expect(acked.size, `seed ${seed} committed something`).to.be.greaterThan(20);
      expect(totalRows).to.be.at.least(acked.size);
    }
    expect(kills).to.equal(160);
  });

  it('under synchronous_commit = off loses at most the last wal_writer_delay of commits', () => {
    let lostSomething = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const disk = new SimDisk();
      const rng = seededRandom(seed);
      const life = boot(disk, seed, true);
      expect(query(life, 'CREATE TABLE kv (id int PRIMARY KEY, v text NOT NULL)').ok).to.equal(true);
      for (let client = 0; client < 3; client++) {
        life.kernel.spawn({
          name: `writer${client}`, behaviour: SQL_WRITER,
          args: { postmaster: life.postmaster, ledger: life.ledger.ref, client, firstId: client * 100_000, synchronousCommit: 'off', maxThinkMs: 1 },
        });
      }
      life.sim.run({ forMs: 10 + rng() * 80, maxSteps: 5_000_000 });
      const crashAt = life.sim.now();
      const acked: RowAcked[] = [];
      for (let m = life.ledger.take<RowAcked>(); m !== undefined; m = life.ledger.take<RowAcked>()) acked.push(m);
      disk.crash(rng, 'lose');
      const after = boot(disk, seed + 500, false);
      const present = new Set(query(after, 'SELECT id FROM kv').rows.map((r) => r['id'] as number));
      const lost = acked.filter((a) => !present.has(a.id));
      if (lost.length > 0) lostSomething++;
      // A background flush starts within wal_writer_delay of a commit; a simulated flush takes well under 1 ms.
      expect(lost.filter((a) => a.at < crashAt - DELAY_MS - 1), `seed ${seed}: lost commits older than wal_writer_delay`).to.deep.equal([]);
    }
    expect(lostSomething, 'off does lose its unflushed tail at times').to.be.greaterThan(0);
  });
});
