/*
 * Synchronous replication as a DBA sees it on the primary: the sync_priority and sync_state
 * columns of pg_stat_replication, and how far commits waiting at remote_write, on and
 * remote_apply are released, for a set of walsenders and a synchronous_standby_names value.
 */
import { expect } from 'chai';
import { AssertionError } from '../../src/assert.js';
import { parseStandbyNames } from '../../src/replication/standby-names.js';
import {
  releasedPositions, standbyPriority, syncStates, type SyncCandidate, type SyncRow,
} from '../../src/replication/syncrep.js';

/** A walsender streaming to `name`, which has written, flushed and applied `flush` + 30, + 0, - 30. */
function walsender(pid: number, name: string, flush: number | null, more: Partial<SyncCandidate> = {}): SyncCandidate {
  return {
    pid, applicationName: name, state: 'streaming',
    write: flush === null ? null : flush + 30, flush, apply: flush === null ? null : flush - 30, ...more,
  };
}

/** pg_stat_replication rows as `application_name priority state`, in pid order. */
function view(setting: string, senders: readonly SyncCandidate[]): string[] {
  const rows = syncStates(parseStandbyNames(setting), senders);
  expect([...rows.keys()].sort((a, b) => a - b)).to.deep.equal(senders.map((s) => s.pid).sort((a, b) => a - b));
  return [...senders].sort((a, b) => a.pid - b.pid).map((s) => {
    const row = rows.get(s.pid) as SyncRow;
    return `${s.applicationName} ${row.priority} ${row.state}`;
  });
}

const released = (setting: string, senders: readonly SyncCandidate[]) =>
  releasedPositions(parseStandbyNames(setting), senders);

const NONE = { write: null, flush: null, apply: null };
/** Released at `flush`, with write 30 ahead and apply 30 behind, as walsender() reports. */
const at = (flush: number) => ({ write: flush + 30, flush, apply: flush - 30 });

describe('synchronous replication', () => {
  describe('sync_priority: the position of the first entry that matches', () => {
    const cases: [string, string, number][] = [
      ['s1, s2, s3', 's2', 2],
      ['FIRST 2 (s1, s2, s3)', 's4', 0],
      ['FIRST 2 (s1, *)', 's1', 1],
      ['FIRST 2 (s1, *)', 'anything', 2],
      ['FIRST 1 (*, s2)', 's2', 1],
      ['FIRST 2 (s1, s1, s2)', 's1', 1],
      ['FIRST 2 (s1, s1, s2)', 's2', 3],
      ['FIRST 1 ("S1")', 's1', 1],
      ['FIRST 1 (Standby_1)', 'STANDBY_1', 1],
      ['FIRST 1 ("*")', 'x', 1],
      ['FIRST 1 ("")', '', 1],
      ['FIRST 1 (RÉPLICA)', 'réplica', 0],
      ['ANY 2 (s1, s2, s3)', 's3', 1],
      ['ANY 2 (s1, *)', 'x', 1],
      ['ANY 2 (s1, s2)', 's3', 0],
    ];
    for (const [setting, name, priority] of cases) {
      it(`${setting}: ${JSON.stringify(name)} has priority ${priority}`, () => {
        expect(standbyPriority(parseStandbyNames(setting), name)).to.equal(priority);
      });
    }

    it('is 0 for everyone without synchronous_standby_names', () => {
      expect(standbyPriority(null, 's1')).to.equal(0);
    });
  });

  describe('FIRST n: priority-based', () => {
    it('makes the n first listed standbys sync, the other listed ones potential', () => {
      const senders = [walsender(11, 's1', 1000), walsender(12, 's2', 900), walsender(13, 's3', 800), walsender(14, 's4', 700)];
      expect(view('FIRST 2 (s1, s2, s3)', senders)).to.deep.equal(['s1 1 sync', 's2 2 sync', 's3 3 potential', 's4 0 async']);
      expect(released('FIRST 2 (s1, s2, s3)', senders)).to.deep.equal(at(900));
    });

    it('chooses by priority, not by arrival: a later walsender of higher priority takes over', () => {
      const senders = [walsender(20, 's3', 500), walsender(21, 's2', 600), walsender(22, 's1', 700)];
      expect(view('FIRST 1 (s1, s2, s3)', senders)).to.deep.equal(['s3 3 potential', 's2 2 potential', 's1 1 sync']);
      expect(released('FIRST 1 (s1, s2, s3)', senders)).to.deep.equal(at(700));
    });

    it('the plain list and "n (...)" are FIRST', () => {
      const senders = [walsender(11, 's1', 1000), walsender(12, 's2', 900)];
      expect(view('s1, s2', senders)).to.deep.equal(['s1 1 sync', 's2 2 potential']);
      expect(view('2 (s1, s2)', senders)).to.deep.equal(['s1 1 sync', 's2 2 sync']);
      expect(released('s1, s2', senders)).to.deep.equal(at(1000));
    });

    it('with fewer standbys than n, those there are sync, but no commit is released', () => {
      const senders = [walsender(11, 's3', 800), walsender(12, 's4', 700)];
      expect(view('FIRST 2 (s1, s2, s3)', senders)).to.deep.equal(['s3 3 sync', 's4 0 async']);
      expect(released('FIRST 2 (s1, s2, s3)', senders)).to.deep.equal(NONE);
      expect(released('FIRST 5 (*)', [walsender(1, 'a', 100), walsender(2, 'b', 200)])).to.deep.equal(NONE);
    });

    it('releases each level at the oldest position among the sync standbys, level by level', () => {
      const senders = [
        { ...walsender(11, 's1', 1000), write: 1500, apply: 200 },
        { ...walsender(12, 's2', 900), write: 1100, apply: 800 },
        walsender(13, 's3', 100),
      ];
      expect(released('FIRST 2 (s1, s2, s3)', senders)).to.deep.equal({ write: 1100, flush: 900, apply: 200 });
    });

    it('breaks a tie in priority by WalSnd slot: the lower pid', () => {
      // Given out of order, to show that order of the input does not matter.
      const senders = [walsender(33, 'b', 300), walsender(31, 'a', 100), walsender(32, 'c', 200)];
      expect(view('FIRST 1 (*)', senders)).to.deep.equal(['a 1 sync', 'c 1 potential', 'b 1 potential']);
      expect(released('FIRST 1 (*)', senders)).to.deep.equal(at(100));
      expect(view('FIRST 2 (x, *)', senders)).to.deep.equal(['a 2 sync', 'c 2 sync', 'b 2 potential']);
      expect(released('FIRST 2 (x, *)', senders)).to.deep.equal(at(100));
    });

    it('gives two standbys of the same name the same priority, and a duplicated entry only its first position', () => {
      const senders = [walsender(41, 's1', 400), walsender(42, 's2', 500), walsender(43, 's1', 300)];
      expect(view('FIRST 2 (s1, s1, s2)', senders)).to.deep.equal(['s1 1 sync', 's2 3 potential', 's1 1 sync']);
      expect(released('FIRST 2 (s1, s1, s2)', senders)).to.deep.equal(at(300));
      expect(view('FIRST 1 (s1, s1, s2)', senders)).to.deep.equal(['s1 1 sync', 's2 3 potential', 's1 1 potential']);
    });

    it('matches names case-insensitively, quoted or not', () => {
      const senders = [walsender(1, 'Standby_A', 100), walsender(2, 'STANDBY_B', 200)];
      expect(view('FIRST 2 ("standby_a", Standby_b)', senders)).to.deep.equal(['Standby_A 1 sync', 'STANDBY_B 2 sync']);
    });
  });

  describe('ANY n: quorum-based', () => {
    const senders = [
      { ...walsender(11, 's1', 1000), write: 1100, apply: 100 },
      { ...walsender(12, 's2', 800), write: 1300, apply: 700 },
      { ...walsender(13, 's3', 900), write: 950, apply: 900 },
      walsender(14, 's4', 5000),
    ];

    it('shows every listed candidate as quorum with priority 1', () => {
      expect(view('ANY 2 (s1, s2, s3)', senders)).to.deep.equal(['s1 1 quorum', 's2 1 quorum', 's3 1 quorum', 's4 0 async']);
    });

    it('releases each level at its own n-th newest position among the candidates', () => {
      expect(released('ANY 2 (s1, s2, s3)', senders)).to.deep.equal({ write: 1100, flush: 900, apply: 700 });
      expect(released('ANY 1 (s1, s2, s3)', senders)).to.deep.equal({ write: 1300, flush: 1000, apply: 900 });
      expect(released('ANY 3 (s1, s2, s3)', senders)).to.deep.equal({ write: 950, flush: 800, apply: 100 });
    });

    it('counts every candidate, even past n', () => {
      expect(view('ANY 1 (*)', senders)).to.deep.equal(['s1 1 quorum', 's2 1 quorum', 's3 1 quorum', 's4 1 quorum']);
      expect(released('ANY 2 (*)', senders).flush).to.equal(1000);
    });

    it('with fewer candidates than n, they are quorum but no commit is released', () => {
      expect(view('ANY 4 (s1, s2, s3)', senders)).to.deep.equal(['s1 1 quorum', 's2 1 quorum', 's3 1 quorum', 's4 0 async']);
      expect(released('ANY 4 (s1, s2, s3)', senders)).to.deep.equal(NONE);
    });

    it('shows a listed standby that cannot vote yet as potential', () => {
      const catchingUp = senders.map((s) => (s.pid === 13 ? { ...s, state: 'catchup' } : s));
      expect(view('ANY 2 (s1, s2, s3)', catchingUp)).to.deep.equal(['s1 1 quorum', 's2 1 quorum', 's3 1 potential', 's4 0 async']);
      expect(released('ANY 2 (s1, s2, s3)', catchingUp)).to.deep.equal({ write: 1100, flush: 800, apply: 100 });
    });
  });

  describe('which walsenders can be synchronous', () => {
    const setting = 'FIRST 2 (s1, s2, s3)';

    it('not one in catchup: it stays potential and the next in line is sync', () => {
      const senders = [walsender(11, 's1', 1000, { state: 'catchup' }), walsender(12, 's2', 900), walsender(13, 's3', 800)];
      expect(view(setting, senders)).to.deep.equal(['s1 1 potential', 's2 2 sync', 's3 3 sync']);
      expect(released(setting, senders)).to.deep.equal(at(800));
    });

    it('one stopping at shutdown still is', () => {
      const senders = [walsender(11, 's1', 1000, { state: 'stopping' }), walsender(12, 's2', 900), walsender(13, 's3', 800)];
      expect(view(setting, senders)).to.deep.equal(['s1 1 sync', 's2 2 sync', 's3 3 potential']);
      expect(released(setting, senders)).to.deep.equal(at(900));
    });

    it('not one that has reported no flush position: it shows priority 0, async', () => {
      const senders = [
        walsender(11, 's1', null),
        { ...walsender(12, 's2', null), flush: 0 },
        walsender(13, 's3', null, { state: 'backup' }),
        walsender(14, 's1', null, { state: 'startup' }),
        walsender(15, 's3', 800),
      ];
      expect(view(setting, senders)).to.deep.equal(['s1 0 async', 's2 0 async', 's3 0 async', 's1 0 async', 's3 3 sync']);
      expect(released(setting, senders)).to.deep.equal(NONE);
    });

    it('a walsender in startup that has streamed before keeps its priority, potential', () => {
      const senders = [walsender(11, 's1', 1000, { state: 'startup' }), walsender(12, 's2', 900)];
      expect(view(setting, senders)).to.deep.equal(['s1 1 potential', 's2 2 sync']);
    });

    it('never a cascading walsender', () => {
      const senders = [walsender(11, 's1', 1000, { cascaded: true }), walsender(12, 's2', 900)];
      expect(view('FIRST 1 (*)', senders)).to.deep.equal(['s1 0 async', 's2 1 sync']);
      expect(released('FIRST 1 (*)', senders)).to.deep.equal(at(900));
      expect(view('ANY 2 (*)', senders)).to.deep.equal(['s1 0 async', 's2 1 quorum']);
      expect(released('ANY 2 (*)', senders)).to.deep.equal(NONE);
    });

    it('no one without synchronous_standby_names', () => {
      const senders = [walsender(11, 's1', 1000), walsender(12, 's2', 900, { cascaded: true })];
      const rows = syncStates(null, senders);
      expect([...rows]).to.deep.equal([[11, { priority: 0, state: 'async' }], [12, { priority: 0, state: 'async' }]]);
      expect(releasedPositions(null, senders)).to.deep.equal(NONE);
      expect(syncStates(null, []).size).to.equal(0);
    });
  });

  it('follows a sync standby going away and coming back, recomputed each time', () => {
    const setting = 'FIRST 1 (s1, s2)';
    const s1 = walsender(11, 's1', 1000);
    const s2 = walsender(12, 's2', 900);
    expect(view(setting, [s1, s2])).to.deep.equal(['s1 1 sync', 's2 2 potential']);
    expect(released(setting, [s1, s2])).to.deep.equal(at(1000));

    // s1's walsender exits: s2 takes over at once, and commits are released from s2's position.
    expect(view(setting, [s2])).to.deep.equal(['s2 2 sync']);
    expect(released(setting, [s2])).to.deep.equal(at(900));

    // s1 reconnects with a new walsender: while it catches up s2 stays sync.
    const back = walsender(13, 's1', 950, { state: 'catchup' });
    expect(view(setting, [s2, back])).to.deep.equal(['s2 2 sync', 's1 1 potential']);
    expect(released(setting, [s2, back])).to.deep.equal(at(900));

    // Once it streams, it is sync again: its position, even if behind s2's, is what counts.
    const streaming = { ...back, state: 'streaming' };
    expect(view(setting, [s2, streaming])).to.deep.equal(['s2 2 potential', 's1 1 sync']);
    expect(released(setting, [s2, streaming])).to.deep.equal(at(950));

    // Both gone: commits wait.
    expect(released(setting, [])).to.deep.equal(NONE);
  });

  describe('positions a standby has not reported', () => {
    it('FIRST: an unreported write or apply is passed over only when it comes first, as in PostgreSQL', () => {
      const early = { ...walsender(1, 'a', 500), apply: null };
      const late = { ...walsender(2, 'b', 600), apply: null };
      // PostgreSQL's running minimum restarts at an invalid value and then takes the next one.
      expect(released('FIRST 2 (a, b)', [early, walsender(2, 'b', 600)]).apply).to.equal(570);
      expect(released('FIRST 2 (a, b)', [walsender(1, 'a', 500), late]).apply).to.equal(null);
    });

    it('ANY: an unreported position counts as the oldest', () => {
      const senders = [{ ...walsender(1, 'a', 500), apply: null }, walsender(2, 'b', 600)];
      expect(released('ANY 1 (a, b)', senders).apply).to.equal(570);
      expect(released('ANY 2 (a, b)', senders)).to.deep.equal({ write: 530, flush: 500, apply: null });
    });
  });

  it('refuses a snapshot with a pid twice: a bug in whoever took it', () => {
    expect(() => syncStates(parseStandbyNames('*'), [walsender(1, 'a', 1), walsender(1, 'b', 2)])).to.throw(AssertionError);
  });
});
