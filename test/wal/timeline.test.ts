/*
 * Timelines as data: history files in PostgreSQL's format, which file holds which segment,
 * and a reader that follows a switch from one timeline's files to the next — and never reads
 * what the old timeline wrote after the switch.
 */
import { expect } from 'chai';
import { formatLsn } from '../../src/wal/lsn.js';
import { WalReader, type ReadResult } from '../../src/wal/reader.js';
import type { WalRecord, WalRecordInput } from '../../src/wal/record.js';
import { segmentFileName, segnoOf } from '../../src/wal/segment.js';
import {
  formatHistory, historyFileName, parseHistory, parseHistoryFileName, switchSegmentCopy, timelineOfLsn, timelineOfSegment, timelineSpans,
} from '../../src/wal/timeline.js';
import { WalWriterCore, type SegmentWrite } from '../../src/wal/writer.js';

const SEG = 1024 * 1024;
const SYSID = 7283829910938759274n;

describe('timelines', () => {
  it('writes and reads history files as PostgreSQL does', () => {
    const entries = [
      { parent: 1, switchpoint: 0x3000158, reason: 'no recovery target specified' },
      { parent: 2, switchpoint: 0x5000000, reason: 'no recovery target specified' },
    ];
    const text = formatHistory(entries);
    expect(text).to.equal('1\t0/3000158\tno recovery target specified\n2\t0/5000000\tno recovery target specified\n');
    expect(parseHistory(text, 3, '00000003.history')).to.deep.equal(entries);
    expect(historyFileName(3)).to.equal('00000003.history');
    expect(historyFileName(26)).to.equal('0000001A.history');
    expect(parseHistoryFileName('0000001A.history')).to.equal(26);
    expect(parseHistoryFileName('000000010000000000000001')).to.equal(null);
    expect(() => parseHistory('1\tnot-an-lsn\n', 2, 'pg_wal/00000002.history')).to.throw('syntax error in history file "pg_wal/00000002.history" line 1');
    expect(() => parseHistory('2\t0/10\tx\n', 2, 'h')).to.throw("timeline IDs must be less than child timeline's ID");
    expect(() => parseHistory('1\t0/10\tx\n1\t0/20\tx\n', 3, 'h')).to.throw('timeline IDs must be in increasing sequence');
  });

  it('reads a switch segment from the newer timeline, and each LSN belongs to one timeline', () => {
    const spans = timelineSpans(3, [{ parent: 1, switchpoint: 0x250000, reason: '' }, { parent: 2, switchpoint: 0x400000, reason: '' }]);
    expect(spans).to.deep.equal([{ timeline: 1, begin: 0, end: 0x250000 }, { timeline: 2, begin: 0x250000, end: 0x400000 }, { timeline: 3, begin: 0x400000, end: null }]);
    expect([1, 2, 3, 4, 5].map((s) => timelineOfSegment(spans, s, SEG))).to.deep.equal([1, 2, 2, 3, 3]);
    expect([0x24ffff, 0x250000, 0x3fffff, 0x400000].map((l) => timelineOfLsn(spans, l))).to.deep.equal([1, 2, 2, 3]);
  });

  it('reads across a promotion from timeline 1 files into timeline 2 files, ignoring what the old primary wrote after', () => {
    const files = new Map<string, Uint8Array>();
    const write = (timeline: number) => (writes: readonly SegmentWrite[]): void => {
      for (const w of writes) {
        const name = segmentFileName(timeline, w.segno, SEG);
        const file = files.get(name) ?? new Uint8Array(SEG);
        file.set(w.bytes, w.offset);
        files.set(name, file);
      }
    };
    const records = (from: number, count: number): WalRecordInput[] =>
      Array.from({ length: count }, (_, i) => ({ rmgr: 1, info: 0, xid: from + i, body: { i: from + i, pad: new Uint8Array(2000 + ((from + i) % 7) * 300) } }));

    const old = new WalWriterCore({ systemIdentifier: SYSID, timeline: 1, segmentSize: SEG, insertLsn: SEG, prevLsn: 0 });
    for (const r of records(0, 700)) old.insert(r);
    write(1)(old.takeWrites());
    const switchLsn = old.insertLsn;
    const lastBefore = old.prevLsn;
    expect(switchLsn % SEG, 'the switch falls inside a segment').to.not.equal(0);
    // The promoted standby copies the switch segment and goes on on timeline 2...
    const segno = segnoOf(switchLsn, SEG);
    files.set(segmentFileName(2, segno, SEG), switchSegmentCopy(files.get(segmentFileName(1, segno, SEG))!, switchLsn, SEG, SYSID, 1, 2));
    const promoted = new WalWriterCore({ systemIdentifier: SYSID, timeline: 2, segmentSize: SEG, insertLsn: switchLsn, prevLsn: lastBefore });
    for (const r of records(10_000, 700)) promoted.insert(r);
    write(2)(promoted.takeWrites());
    // ...while the old primary, not knowing, wrote more on timeline 1.
    for (const r of records(20_000, 50)) old.insert(r);
    write(1)(old.takeWrites());

    const reader = new WalReader({
      systemIdentifier: SYSID, timeline: 2, segmentSize: SEG, startLsn: SEG, prevLsn: 0,
      timelines: timelineSpans(2, [{ parent: 1, switchpoint: switchLsn, reason: '' }]),
    });
    const read: WalRecord[] = [];
    let end: ReadResult | null = null;
    while (end === null) {
      const r = reader.next();
      if (r.kind === 'record') read.push(r.record);
      else if (r.kind === 'need') reader.supply(r.segno, files.get(segmentFileName(reader.timelineOf(r.segno), r.segno, SEG)) ?? null);
      else end = r;
    }
    expect(read.map((r) => (r.body as { i: number }).i)).to.deep.equal([...records(0, 700), ...records(10_000, 700)].map((r) => (r.body as { i: number }).i));
    expect(read[700]!.lsn, `the first record on timeline 2 starts at the switch point ${formatLsn(switchLsn)}`).to.equal(switchLsn);
    expect(end.kind).to.equal('end');
  });
});
