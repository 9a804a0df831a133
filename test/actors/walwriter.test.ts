/*
 * The walwriter: what it acknowledges survives a crash at any instant.
 *
 * Under the simulator, clients commit through one walwriter on a SimDisk; the run is cut
 * at a random moment by a power cut that drops (or tears) every unsynced write; the WAL is
 * read back as recovery would; the next life continues from the end of valid WAL. Hundreds
 * of kills over many seeds. With synchronous_commit = local nothing acknowledged may be
 * missing; with off, only what was acknowledged within the last wal_writer_delay window.
 * Then the same with real files and a real kill -9 of the process hosting the walwriter.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WALWRITER, type WalWriterArgs } from '../../src/actors/walwriter.js';
import { Kernel } from '../../src/runtime/kernel.js';
import '../../src/runtime/placement.js';
import { seededRandom } from '../../src/runtime/prng.js';
import { SimDisk } from '../../src/runtime/simdisk.js';
import { SimScheduler } from '../../src/runtime/simulator.js';
import { WalReader } from '../../src/wal/reader.js';
import { parseSegmentFileName, segmentFileName } from '../../src/wal/segment.js';
import { COMMIT_RMGR, COMMITTER, type Acked, type CommitBody } from '../fixtures/committers.js';
import { until } from '../helpers.js';

const SEG = 1024 * 1024;
const SYSID = 7000000000000000001n;
const WAL_DIR = '/data/pg_wal';
const DELAY_MS = 10;

interface RecoveredWal {
  readonly commits: CommitBody[];
  readonly endLsn: number;
  readonly lastLsn: number;
}

/** Reads the WAL back as crash recovery does, from the first segment to the end of valid WAL. */
function recover(read: (name: string) => Uint8Array | null): RecoveredWal {
  const reader = new WalReader({ systemIdentifier: SYSID, timeline: 1, segmentSize: SEG, startLsn: SEG, prevLsn: 0 });
  const commits: CommitBody[] = [];
  for (;;) {
    const r = reader.next();
    if (r.kind === 'need') reader.supply(r.segno, read(segmentFileName(1, r.segno, SEG)));
    else if (r.kind === 'record') {
      if (r.record.rmgr === COMMIT_RMGR) commits.push(r.record.body as CommitBody);
    } else {
      expect(r.foreign, r.reason).to.equal(false);
      return { commits, endLsn: r.lsn, lastLsn: reader.lastRecordLsn };
    }
  }
}

function walArgs(insertLsn: number, prevLsn: number, walDir = WAL_DIR): WalWriterArgs {
  return {
    walDir, systemIdentifier: SYSID, timeline: 1, segmentSize: SEG, insertLsn, prevLsn,
    walWriterDelayMs: DELAY_MS, walWriterFlushAfterBytes: 1024 * 1024,
  };
}

describe('walwriter durability (simulated power cuts)', function () {
  this.timeout(60_000);

  for (const mode of ['lose', 'torn'] as const) {
    it(`keeps every acknowledged local commit across 150 power cuts (${mode} unsynced writes)`, () => {
      let kills = 0;
      for (let seed = 1; seed <= 50; seed++) {
        const disk = new SimDisk();
        disk.mkdirp(WAL_DIR);
        const rng = seededRandom(seed);
        let position = { insertLsn: SEG, prevLsn: 0 };
        const acked: Acked[] = [];
        for (let life = 0; life < 3; life++) {
          const sim = new SimScheduler({ seed: seed * 100 + life, io: disk.handlers(), keepTrace: false });
          const kernel = new Kernel({ id: `life${life}`, scheduler: sim });
          const ledger = kernel.inbox('ledger');
          const walwriter = kernel.spawn({ name: 'walwriter', behaviour: WALWRITER, args: walArgs(position.insertLsn, position.prevLsn) });
          for (let client = 0; client < 4; client++) {
            kernel.spawn({
              name: `client${client}`, behaviour: COMMITTER,
              args: { walwriter, client, firstSeq: life * 1_000_000, flush: true, ledger: ledger.ref, maxThinkMs: rng() < 0.5 ? 0 : 2, count: Infinity },
            });
          }
          sim.run({ forMs: 1 + rng() * 30 });
          for (let m = ledger.take<Acked>(); m !== undefined; m = ledger.take<Acked>()) acked.push(m);
          disk.crash(rng, mode);
          kills++;
          const wal = recover((name) => disk.read(`${WAL_DIR}/${name}`));
          const present = new Set(wal.commits.map((c) => `${c.client}:${c.seq}`));
          const missing = acked.filter((a) => !present.has(`${a.client}:${a.seq}`));
          expect(missing, `seed ${seed} life ${life}: acknowledged commits lost`).to.deep.equal([]);
          // Each client commits in order, so what survives of it is a gap-free prefix.
          for (let client = 0; client < 4; client++) {
            const seqs = wal.commits.filter((c) => c.client === client && c.seq >= life * 1_000_000).map((c) => c.seq - life * 1_000_000);
            expect(seqs, `seed ${seed} life ${life} client ${client}`).to.deep.equal([...seqs.keys()]);
          }
          position = { insertLsn: wal.endLsn, prevLsn: wal.lastLsn };
        }
        expect(acked.length, `seed ${seed} committed something`).to.be.greaterThan(0);
      }
      expect(kills).to.equal(150);
    });
  }

  it('under synchronous_commit = off loses only what was acknowledged within the last wal_writer_delay', () => {
    let lostSomething = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const disk = new SimDisk();
      disk.mkdirp(WAL_DIR);
      const rng = seededRandom(seed);
      const sim = new SimScheduler({ seed, io: disk.handlers(), keepTrace: false });
      const kernel = new Kernel({ id: 'off', scheduler: sim });
      const ledger = kernel.inbox('ledger');
      const walwriter = kernel.spawn({ name: 'walwriter', behaviour: WALWRITER, args: walArgs(SEG, 0) });
      for (let client = 0; client < 3; client++) {
        kernel.spawn({ name: `client${client}`, behaviour: COMMITTER, args: { walwriter, client, firstSeq: 0, flush: false, ledger: ledger.ref, maxThinkMs: 1, count: Infinity } });
      }
      sim.run({ forMs: 5 + rng() * 60 });
      const crashAt = sim.now();
      const acked: Acked[] = [];
      for (let m = ledger.take<Acked>(); m !== undefined; m = ledger.take<Acked>()) acked.push(m);
      disk.crash(rng, 'lose');
      const present = new Set(recover((name) => disk.read(`${WAL_DIR}/${name}`)).commits.map((c) => `${c.client}:${c.seq}`));
      const lost = acked.filter((a) => !present.has(`${a.client}:${a.seq}`));
      if (lost.length > 0) lostSomething++;
      // A background flush starts at most wal_writer_delay after an insert and a sim flush takes under 1 ms.
      const tooOld = lost.filter((a) => a.at < crashAt - DELAY_MS - 1);
      expect(tooOld, `seed ${seed}: lost commits older than the wal_writer_delay window`).to.deep.equal([]);
      expect(acked.every((a) => !a.flushed)).to.equal(true);
    }
    expect(lostSomething, 'off really does lose the unflushed tail sometimes').to.be.greaterThan(0);
  });
});

describe('walwriter durability (real files, kill -9)', function () {
  this.timeout(60_000);

  it('keeps every acknowledged commit when the process hosting it is killed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'walship-walwriter-'));
    const kernel = new Kernel();
    try {
      const walDir = join(dir, 'pg_wal');
      mkdirSync(walDir);
      const ledger = kernel.inbox('ledger');
      const walwriter = kernel.spawn({ name: 'walwriter', behaviour: WALWRITER, args: walArgs(SEG, 0, walDir), placement: 'process' });
      for (let client = 0; client < 4; client++) {
        kernel.spawn({ name: `client${client}`, behaviour: COMMITTER, args: { walwriter, client, firstSeq: 0, flush: true, ledger: ledger.ref, maxThinkMs: 0, count: Infinity } });
      }
      const acked: Acked[] = [];
      while (acked.length < 3000) acked.push(await ledger.next<Acked>(10_000));
      await until(() => kernel.placementOf(walwriter)?.pid !== undefined, 'the walwriter pid');
      const pid = kernel.placementOf(walwriter)!.pid!;
      process.kill(pid, 'SIGKILL');
      expect(await kernel.whenExited(walwriter)).to.deep.equal({ kind: 'crash', message: `process ${pid} was terminated by signal SIGKILL` });
      for (let m = ledger.take<Acked>(); m !== undefined; m = ledger.take<Acked>()) acked.push(m);
      const files = readdirSync(walDir).filter((n) => parseSegmentFileName(n, SEG) !== null);
      expect(files.length).to.be.greaterThan(0);
      const wal = recover((name) => {
        try {
          return new Uint8Array(readFileSync(join(walDir, name)));
        } catch {
          return null;
        }
      });
      const present = new Set(wal.commits.map((c) => `${c.client}:${c.seq}`));
      expect(acked.filter((a) => !present.has(`${a.client}:${a.seq}`))).to.deep.equal([]);
      expect(wal.commits.length).to.be.at.least(acked.length);
    } finally {
      await kernel.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
