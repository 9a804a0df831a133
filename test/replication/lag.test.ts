/*
 * write_lag, flush_lag and replay_lag as a DBA reads them in pg_stat_replication: they grow
 * with delay, keep write <= flush <= replay for a standby that writes, then flushes, then
 * applies, go NULL once an idle standby has said twice that it is caught up, and come back
 * when new WAL flows.
 */
import { expect } from 'chai';
import { formatInterval, LagTracker } from '../../src/replication/lag.js';

const MS = 1000;

/** The three columns as pg_stat_replication prints them. */
const columns = (lag: LagTracker): (string | null)[] =>
  [formatInterval(lag.writeLag), formatInterval(lag.flushLag), formatInterval(lag.replayLag)];

describe('replication lag', () => {
  it('grows with the time the standby takes to report', () => {
    const quick = new LagTracker();
    quick.sent(100, 0);
    quick.reply({ write: 100, flush: 100, apply: 100 }, 100, 2 * MS);
    const slow = new LagTracker();
    slow.sent(100, 0);
    slow.reply({ write: 100, flush: 100, apply: 100 }, 100, 1500 * MS);
    expect(columns(quick)).to.deep.equal(['00:00:00.002', '00:00:00.002', '00:00:00.002']);
    expect(columns(slow)).to.deep.equal(['00:00:01.5', '00:00:01.5', '00:00:01.5']);
  });

  it('keeps write <= flush <= replay for a standby that writes, then flushes, then applies', () => {
    const lag = new LagTracker();
    let sentPtr = 0;
    for (let k = 1; k <= 5; k++) {
      const at = k * 10 * MS;
      const previous = sentPtr;
      sentPtr = k * 8192;
      lag.sent(sentPtr, at);
      lag.reply({ write: sentPtr, flush: previous, apply: previous }, sentPtr, at + 2 * MS);
      expect(lag.writeLag).to.equal(2 * MS);
      lag.reply({ write: sentPtr, flush: sentPtr, apply: previous }, sentPtr, at + 4 * MS);
      lag.reply({ write: sentPtr, flush: sentPtr, apply: sentPtr }, sentPtr, at + 7 * MS);
      expect([lag.writeLag, lag.flushLag, lag.replayLag]).to.deep.equal([2 * MS, 4 * MS, 7 * MS]);
    }
    expect(columns(lag)).to.deep.equal(['00:00:00.002', '00:00:00.004', '00:00:00.007']);
  });

  it('shows a stuck replay as a lag that keeps growing, between the samples it has not reached', () => {
    const lag = new LagTracker();
    const replayLags: number[] = [];
    lag.sent(100, 1 * MS);
    for (let k = 2; k <= 6; k++) {
      lag.sent(k * 100, k * MS);
      // Written and flushed promptly; replay stopped halfway between the first two samples.
      lag.reply({ write: k * 100, flush: k * 100, apply: 150 }, k * 100, k * MS + 100);
      replayLags.push(lag.replayLag!);
      expect(lag.writeLag).to.equal(100);
    }
    // First the age of the sample at 100 (sent at 1 ms); then 150 is placed halfway
    // between 100 and 200, as sent at 1.5 ms, and its age grows with the clock.
    expect(replayLags).to.deep.equal([1100, 1600, 2600, 3600, 4600]);
  });

  it('reports the age of the next sample for a standby that has not reached a new burst', () => {
    const lag = new LagTracker();
    lag.sent(100, 1 * MS);
    lag.reply({ write: 100, flush: 100, apply: 100 }, 100, 2 * MS);
    lag.sent(200, 10 * MS);
    lag.reply({ write: 200, flush: 100, apply: 100 }, 200, 13 * MS);
    expect([lag.writeLag, lag.flushLag, lag.replayLag]).to.deep.equal([3 * MS, 3 * MS, 3 * MS]);
    lag.reply({ write: 200, flush: 100, apply: 100 }, 200, 15 * MS);
    expect([lag.writeLag, lag.flushLag, lag.replayLag]).to.deep.equal([3 * MS, 5 * MS, 5 * MS]);
  });

  it('goes NULL after two caught-up replies, and comes back when new WAL is acknowledged', () => {
    const lag = new LagTracker();
    lag.sent(100, 0);
    lag.reply({ write: 100, flush: 100, apply: 100 }, 100, 3 * MS);
    expect(columns(lag)).to.deep.equal(['00:00:00.003', '00:00:00.003', '00:00:00.003']);

    // wal_receiver_status_interval later, nothing new: the standby is idle.
    lag.reply({ write: 100, flush: 100, apply: 100 }, 100, 10_003 * MS);
    expect(columns(lag)).to.deep.equal([null, null, null]);
    lag.reply({ write: 100, flush: 100, apply: 100 }, 100, 20_003 * MS);
    expect(columns(lag)).to.deep.equal([null, null, null]);

    lag.sent(250, 30_000 * MS);
    lag.reply({ write: 250, flush: 100, apply: 100 }, 250, 30_000 * MS + 500);
    expect([lag.writeLag, lag.flushLag, lag.replayLag]).to.deep.equal([500, 500, 500]);
    lag.reply({ write: 250, flush: 250, apply: 250 }, 250, 30_001 * MS);
    expect(columns(lag)).to.deep.equal(['00:00:00.0005', '00:00:00.001', '00:00:00.001']);
    lag.reply({ write: 250, flush: 250, apply: 250 }, 250, 40_001 * MS);
    expect(columns(lag)).to.deep.equal([null, null, null]);
  });

  it('records one sample per LSN and keeps measuring when the standby is further behind than the buffer holds', () => {
    const lag = new LagTracker(4);
    lag.sent(100, 1 * MS);
    lag.sent(100, 1.5 * MS);
    for (let k = 2; k <= 10; k++) lag.sent(k * 100, k * MS);
    // The buffer kept 100, 200 and the newest (1000 at 10 ms), overwriting 300 to 900:
    // the newest sample at or below 500 is now the one at 200, sent at 2 ms.
    lag.reply({ write: 500, flush: 500, apply: 500 }, 1000, 20 * MS);
    expect(lag.replayLag).to.equal(18 * MS);
    lag.reply({ write: 1000, flush: 1000, apply: 1000 }, 1000, 21 * MS);
    expect(lag.replayLag).to.equal(11 * MS);
    lag.reply({ write: 100, flush: 100, apply: 100 }, 1000, 22 * MS);
    expect(lag.replayLag, 'a position going backwards measures nothing').to.equal(11 * MS);
  });

  it('prints lags as PostgreSQL prints an interval', () => {
    expect(formatInterval(null)).to.equal(null);
    expect(formatInterval(0)).to.equal('00:00:00');
    expect(formatInterval(1234)).to.equal('00:00:00.001234');
    expect(formatInterval(1_500_000)).to.equal('00:00:01.5');
    expect(formatInterval(3_723_000_100)).to.equal('01:02:03.0001');
    expect(formatInterval(100_000_000_000)).to.equal('27:46:40');
    expect(formatInterval(-1_500_000)).to.equal('-00:00:01.5');
  });
});
