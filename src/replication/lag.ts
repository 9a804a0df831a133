/*
 * lag.ts — write_lag, flush_lag and replay_lag of pg_stat_replication, as a walsender
 * measures them (PostgreSQL's LagTrackerWrite and LagTrackerRead).
 *
 * Each walsender owns one LagTracker. Whenever it sends WAL it records (end of WAL sent,
 * time) with sent(); a position that has not moved since the last call records nothing, so
 * each sample marks a distinct LSN. When the standby's StandbyStatusUpdate arrives, reply()
 * takes the written, flushed and applied positions it reports and, for each, the time that
 * position was sent: the lag is the time from sending until the standby reported it, which
 * includes the network both ways. Each of the three positions reads the samples with its own
 * head and consumes those it has passed, so a lag is the age of the newest sample at or
 * below the reported LSN. A report that passes no new sample but lies between the last one
 * it passed and the next is placed on the line between them by LSN, so a standby whose
 * apply is stuck shows a lag that keeps growing instead of freezing. A report before the
 * first sample of a burst that follows an idle time reads that sample's time: the lag it
 * would have if it reached the sample now.
 *
 * A report that finds no time (nothing new consumed and nothing to interpolate, LSNs going
 * backwards, a clock going backwards) leaves the previous lag in place. Two reports in a row
 * with apply equal to what was sent mean the standby is idle (the second comes from
 * wal_receiver_status_interval expiring): lags that found no time are then cleared to null,
 * as PostgreSQL shows NULL for an idle standby, until new WAL flows and is acknowledged.
 *
 * The buffer holds LAG_TRACKER_BUFFER_SIZE samples less one. When the slowest reader (apply,
 * usually) leaves no room, the newest sample is overwritten by the next one, as PostgreSQL
 * does: sampling becomes coarser, never unbounded. Times are microseconds (PostgreSQL's
 * TimestampTz resolution); the caller passes the clock in, so this file has no I/O and no
 * timers.
 */
import { assert } from '../assert.js';
import type { Lsn } from '../wal/lsn.js';

/** Samples a walsender's lag tracker holds (PostgreSQL's LAG_TRACKER_BUFFER_SIZE). */
export const LAG_TRACKER_BUFFER_SIZE = 8192;

export interface StandbyPositions {
  readonly write: Lsn;
  readonly flush: Lsn;
  readonly apply: Lsn;
}

interface WalTimeSample {
  readonly lsn: Lsn;
  readonly timeMicros: number;
}

/** One read head per position a standby reports, in the order of PostgreSQL's wait modes. */
const WRITE = 0;
const FLUSH = 1;
const APPLY = 2;
type Reader = typeof WRITE | typeof FLUSH | typeof APPLY;
const READERS: readonly Reader[] = [WRITE, FLUSH, APPLY];

export class LagTracker {
  private readonly buffer: (WalTimeSample | undefined)[];
  /** Where the next sample goes; equal to a read head when that reader has read everything. */
  private writeHead = 0;
  private readonly readHeads: [number, number, number] = [0, 0, 0];
  /** The last sample each reader passed, kept for interpolation while more samples wait. */
  private readonly lastRead: [WalTimeSample | null, WalTimeSample | null, WalTimeSample | null] = [null, null, null];
  private lastSentLsn: Lsn | null = null;
  private fullyAppliedLastTime = false;
  private readonly lags: [number | null, number | null, number | null] = [null, null, null];

  constructor(private readonly capacity: number = LAG_TRACKER_BUFFER_SIZE) {
    assert(Number.isSafeInteger(capacity) && capacity >= 2, 'a lag tracker holds at least one sample');
    this.buffer = new Array<WalTimeSample | undefined>(capacity);
  }

  /** Microseconds from sending to the standby's write, or null (pg_stat_replication.write_lag). */
  get writeLag(): number | null {
    return this.lags[WRITE];
  }

  get flushLag(): number | null {
    return this.lags[FLUSH];
  }

  get replayLag(): number | null {
    return this.lags[APPLY];
  }

  /** WAL up to `lsn` (last byte + 1) has been sent at `nowMicros`. */
  sent(lsn: Lsn, nowMicros: number): void {
    if (lsn === this.lastSentLsn) return;
    assert(this.lastSentLsn === null || lsn > this.lastSentLsn, 'sent positions only move forward');
    this.lastSentLsn = lsn;
    let nextHead = (this.writeHead + 1) % this.capacity;
    if (this.readHeads.includes(nextHead)) {
      // Full: the slowest reader holds the space. Overwrite the newest sample instead.
      nextHead = this.writeHead;
      this.writeHead = (this.writeHead + this.capacity - 1) % this.capacity;
    }
    this.buffer[this.writeHead] = { lsn, timeMicros: nowMicros };
    this.writeHead = nextHead;
  }

  /** A StandbyStatusUpdate reporting `positions` arrived at `nowMicros`; `sentPtr` is what has been sent. */
  reply(positions: StandbyPositions, sentPtr: Lsn, nowMicros: number): void {
    const measured = [
      this.read(WRITE, positions.write, nowMicros),
      this.read(FLUSH, positions.flush, nowMicros),
      this.read(APPLY, positions.apply, nowMicros),
    ];
    let clear = false;
    if (positions.apply === sentPtr) {
      clear = this.fullyAppliedLastTime;
      this.fullyAppliedLastTime = true;
    } else {
      this.fullyAppliedLastTime = false;
    }
    for (const reader of READERS) {
      const lag = measured[reader]!;
      if (lag !== null || clear) this.lags[reader] = lag;
    }
  }

  private sampleAt(index: number): WalTimeSample {
    const sample = this.buffer[index];
    assert(sample !== undefined, 'a read head only points at written samples');
    return sample;
  }

  /** Microseconds since `lsn` was sent, consuming the samples it passed; null if not known. */
  private read(reader: Reader, lsn: Lsn, nowMicros: number): number | null {
    let crossed: WalTimeSample | null = null;
    while (this.readHeads[reader] !== this.writeHead && this.sampleAt(this.readHeads[reader]).lsn <= lsn) {
      crossed = this.sampleAt(this.readHeads[reader]);
      this.lastRead[reader] = crossed;
      this.readHeads[reader] = (this.readHeads[reader] + 1) % this.capacity;
    }
    const caughtUp = this.readHeads[reader] === this.writeHead;
    // Everything sent has been read: an old sample must not bend the next burst's interpolation.
    if (caughtUp) this.lastRead[reader] = null;

    let sentMicros: number;
    if (crossed !== null) {
      sentMicros = crossed.timeMicros;
    } else if (caughtUp) {
      return null;
    } else {
      const next = this.sampleAt(this.readHeads[reader]);
      const prev = this.lastRead[reader];
      if (prev === null) {
        sentMicros = next.timeMicros;
      } else {
        // LSNs go backwards only across a timeline switch; a clock may go backwards. Neither measures anything.
        if (lsn < prev.lsn || prev.timeMicros > next.timeMicros) return null;
        assert(prev.lsn < next.lsn, 'samples are in LSN order');
        const fraction = (lsn - prev.lsn) / (next.lsn - prev.lsn);
        sentMicros = Math.trunc(prev.timeMicros + (next.timeMicros - prev.timeMicros) * fraction);
      }
    }
    return sentMicros > nowMicros ? null : nowMicros - sentMicros;
  }
}

const MICROS_PER_SECOND = 1_000_000;
const MICROS_PER_MINUTE = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR = 60 * MICROS_PER_MINUTE;

/**
 * A lag as pg_stat_replication prints it (an interval of hours, minutes and seconds, in
 * IntervalStyle postgres): `00:00:00.001234`, `00:00:01.5`, `27:46:40`. null stays null.
 */
export function formatInterval(micros: number | null): string | null {
  if (micros === null) return null;
  assert(Number.isSafeInteger(micros), `an interval is a whole number of microseconds: ${micros}`);
  let rest = Math.abs(micros);
  const hours = Math.floor(rest / MICROS_PER_HOUR);
  rest -= hours * MICROS_PER_HOUR;
  const minutes = Math.floor(rest / MICROS_PER_MINUTE);
  rest -= minutes * MICROS_PER_MINUTE;
  const seconds = Math.floor(rest / MICROS_PER_SECOND);
  const fraction = rest - seconds * MICROS_PER_SECOND;
  const two = (n: number): string => String(n).padStart(2, '0');
  const text = `${micros < 0 ? '-' : ''}${two(hours)}:${two(minutes)}:${two(seconds)}`;
  return fraction === 0 ? text : `${text}.${String(fraction).padStart(6, '0').replace(/0+$/, '')}`;
}
