/*
 * reader.ts — reading WAL records back, and knowing where valid WAL ends.
 *
 * The reader walks the stream from a start LSN and returns one record at a time. It does no
 * I/O: when it needs a segment file it answers `need`, and the caller (startup, walsender,
 * a test) supplies the file's bytes or null if there is none, then asks again. That keeps the
 * same reader usable from an actor under the real scheduler and under the simulator.
 *
 * It stops cleanly at the end of valid WAL, which is not an error: a zeroed tail, a record
 * cut short, a length out of range, a CRC mismatch, a broken prev-link, a segment not written
 * yet or missing. It never returns a damaged record. A segment that belongs to another
 * cluster, timeline or position is also an end, flagged `foreign`, so that the caller can
 * refuse to go on (FATAL) rather than take it for an ordinary end. Messages follow
 * PostgreSQL's xlogreader wording, with LSNs as `X/XXXXXXXX`.
 */
import { MAX_WAL_RECORD_BYTES } from '../constants.js';
import { formatLsn, InvalidLsn, maxAlign, type Lsn } from './lsn.js';
import { timelineOfSegment, type TimelineSpan } from './timeline.js';
import { decodeRecordBody, decodeRecordHeader, isSwitchRecord, RECORD_HEADER_SIZE, recordCrc, type WalRecord } from './record.js';
import {
  checkSegmentHeader, isHeaderProblem, SEGMENT_HEADER_SIZE, segmentFileName, segmentStart, segnoOf,
  type SegmentNumber, type SystemIdentifier, type TimelineId,
} from './segment.js';

export type ReadResult =
  | { readonly kind: 'record'; readonly record: WalRecord }
  | { readonly kind: 'need'; readonly segno: SegmentNumber }
  | { readonly kind: 'end'; readonly lsn: Lsn; readonly reason: string; readonly foreign: boolean };

export interface WalReaderOptions {
  readonly systemIdentifier: SystemIdentifier;
  readonly timeline: TimelineId;
  readonly segmentSize: number;
  /** Where the first record starts (a record boundary, or the start of a segment). */
  readonly startLsn: Lsn;
  /** What the first record's prev-link must be; InvalidLsn to accept any. */
  readonly prevLsn?: Lsn;
  /**
   * The timeline and its ancestors (wal/timeline.ts), to read across timeline switches: each
   * segment is expected from the timeline whose file holds it. Without: `timeline` throughout.
   */
  readonly timelines?: readonly TimelineSpan[];
}

type Gathered =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array; readonly end: Lsn }
  | { readonly kind: 'need'; readonly segno: SegmentNumber }
  | { readonly kind: 'end'; readonly reason: string; readonly foreign: boolean };

export class WalReader {
  private options: WalReaderOptions;
  private readonly segments = new Map<SegmentNumber, Uint8Array | null>();
  private pos: Lsn;
  private prev: Lsn;
  private ended: ReadResult | null = null;

  constructor(options: WalReaderOptions) {
    this.options = options;
    this.pos = options.startLsn;
    this.prev = options.prevLsn ?? InvalidLsn;
  }

  /** Where the next record would start. After an end, where valid WAL ends. */
  get nextLsn(): Lsn {
    return this.pos;
  }

  /** Start of the last record returned (the next record's expected prev-link). */
  get lastRecordLsn(): Lsn {
    return this.prev;
  }

  /** Gives the reader a segment's bytes (the whole file, or what exists of it), or null if there is no such file. */
  supply(segno: SegmentNumber, bytes: Uint8Array | null): void {
    this.segments.set(segno, bytes);
  }

  /**
   * After an ordinary end, try again from where valid WAL ended: a standby's stream grows,
   * and the bytes supplied anew may now hold the record that was cut short. A foreign
   * segment stays an end.
   */
  resume(): void {
    if (this.ended !== null && this.ended.kind === 'end' && !this.ended.foreign) this.ended = null;
  }

  next(): ReadResult {
    if (this.ended !== null) return this.ended;
    const segmentSize = this.options.segmentSize;
    let start = this.pos;
    if (start % segmentSize === 0) {
      // A record boundary that is also a file boundary: the file's header comes first.
      const segno = segnoOf(start, segmentSize);
      const checked = this.header(segno);
      if (checked.kind !== 'ok') return checked.kind === 'need' ? checked : this.end(start, checked.reason, checked.foreign);
      const skip = this.prev === InvalidLsn ? maxAlign(checked.remLen) : 0;
      if (this.prev !== InvalidLsn && checked.remLen !== 0) {
        return this.end(start, `unexpected continuation data (${checked.remLen} bytes) at ${formatLsn(start + SEGMENT_HEADER_SIZE)}`, false);
      }
      start += SEGMENT_HEADER_SIZE + skip;
      this.pos = start;
    }
    const head = this.gather(start, RECORD_HEADER_SIZE, null);
    if (head.kind === 'need') return head;
    if (head.kind === 'end') return this.end(start, head.reason, head.foreign);
    const header = decodeRecordHeader(head.bytes);
    if (header.totalLength < RECORD_HEADER_SIZE) {
      return this.end(start, `invalid record length at ${formatLsn(start)}: expected at least ${RECORD_HEADER_SIZE}, got ${header.totalLength}`, false);
    }
    if (header.totalLength > MAX_WAL_RECORD_BYTES) {
      return this.end(start, `record length ${header.totalLength} at ${formatLsn(start)} too long`, false);
    }
    if (this.prev !== InvalidLsn && header.prevLsn !== this.prev) {
      return this.end(start, `record with incorrect prev-link ${formatLsn(header.prevLsn)} at ${formatLsn(start)}`, false);
    }
    const whole = this.gather(start, header.totalLength, header.totalLength);
    if (whole.kind === 'need') return whole;
    if (whole.kind === 'end') return this.end(start, whole.reason, whole.foreign);
    if (recordCrc(whole.bytes) !== header.crc) {
      return this.end(start, `incorrect resource manager data checksum in record at ${formatLsn(start)}`, false);
    }
    let body: unknown;
    try {
      body = decodeRecordBody(whole.bytes);
    } catch (err) {
      return this.end(start, `undecodable record body at ${formatLsn(start)}: ${(err as Error).message}`, false);
    }
    let end = maxAlign(whole.end);
    // After a segment switch the rest of the segment is zeroes: the next record opens the next one.
    if (isSwitchRecord(header) && end % segmentSize !== 0) end = segmentStart(segnoOf(end, segmentSize) + 1, segmentSize);
    const record: WalRecord = {
      lsn: start, endLsn: end, prevLsn: header.prevLsn, totalLength: header.totalLength,
      xid: header.xid, rmgr: header.rmgr, info: header.info, body,
    };
    this.prev = start;
    this.pos = end;
    this.forgetBefore(segnoOf(this.pos, segmentSize));
    return { kind: 'record', record };
  }

  private end(lsn: Lsn, reason: string, foreign: boolean): ReadResult {
    this.pos = lsn;
    this.ended = { kind: 'end', lsn, reason, foreign };
    return this.ended;
  }

  private fileName(segno: SegmentNumber): string {
    return segmentFileName(this.timelineOf(segno), segno, this.options.segmentSize);
  }

  /**
   * Follows a newer timeline from here on (a standby whose upstream was promoted): segments
   * are expected from the timelines of this history. What was supplied stays.
   */
  followTimeline(timeline: TimelineId, spans: readonly TimelineSpan[]): void {
    this.options = { ...this.options, timeline, timelines: spans };
  }

  /** The bytes supplied for segment `segno` (undefined: none yet; null: it does not exist). */
  segment(segno: SegmentNumber): Uint8Array | null | undefined {
    return this.segments.get(segno);
  }

  /**
   * The timeline a supplied file of segment `segno` may carry: the one whose file holds it,
   * or (across a switch) an older timeline of the history that also wrote into it — a caller
   * falling back to the older file supplies it cut at the switch point, as PostgreSQL's
   * XLogFileReadAnyTLI reads the parent's file.
   */
  private acceptedTimeline(bytes: Uint8Array, segno: SegmentNumber): TimelineId {
    const expected = this.timelineOf(segno);
    const spans = this.options.timelines;
    if (spans === undefined || bytes.length < 12) return expected;
    const inFile = new DataView(bytes.buffer, bytes.byteOffset, 12).getUint32(8, true);
    const segmentEnd = segmentStart(segno + 1, this.options.segmentSize);
    return spans.some((s) => s.timeline === inFile && s.begin < segmentEnd && s.timeline <= expected) ? inFile : expected;
  }

  /** The timeline whose file holds segment `segno`. */
  timelineOf(segno: SegmentNumber): TimelineId {
    const spans = this.options.timelines;
    return spans === undefined ? this.options.timeline : timelineOfSegment(spans, segno, this.options.segmentSize);
  }

  private header(segno: SegmentNumber):
    | { readonly kind: 'ok'; readonly remLen: number }
    | { readonly kind: 'need'; readonly segno: SegmentNumber }
    | { readonly kind: 'end'; readonly reason: string; readonly foreign: boolean } {
    const bytes = this.segments.get(segno);
    if (bytes === undefined) return { kind: 'need', segno };
    if (bytes === null) return { kind: 'end', reason: `WAL segment ${this.fileName(segno)} does not exist`, foreign: false };
    const checked = checkSegmentHeader(bytes, 0, { ...this.options, timeline: this.acceptedTimeline(bytes, segno), segno }, this.fileName(segno));
    if (isHeaderProblem(checked)) return { kind: 'end', reason: checked.message, foreign: checked.kind === 'foreign' };
    return { kind: 'ok', remLen: checked.remLen };
  }

  /**
   * `n` stream bytes from `pos`, skipping the headers of files entered on the way (their
   * `remLen` must match what is left of a record of `recordLength` bytes). Zero-copy when the
   * bytes lie in one file.
   */
  private gather(pos: Lsn, n: number, recordLength: number | null): Gathered {
    const segmentSize = this.options.segmentSize;
    let out: Uint8Array | null = null;
    let got = 0;
    let p = pos;
    while (got < n) {
      const segno = segnoOf(p, segmentSize);
      let offset = p - segmentStart(segno, segmentSize);
      if (offset === 0) {
        const checked = this.header(segno);
        if (checked.kind === 'need') return checked;
        if (checked.kind === 'end') {
          return { kind: 'end', reason: `record at ${formatLsn(pos)} is incomplete: ${checked.reason}`, foreign: checked.foreign };
        }
        if (recordLength !== null) {
          const expected = recordLength - got;
          if (checked.remLen === 0) return { kind: 'end', reason: `there is no contrecord flag at ${formatLsn(p)}`, foreign: false };
          if (checked.remLen !== expected) {
            return { kind: 'end', reason: `invalid contrecord length ${checked.remLen} (expected ${expected}) at ${formatLsn(p)}`, foreign: false };
          }
        }
        p += SEGMENT_HEADER_SIZE;
        offset = SEGMENT_HEADER_SIZE;
      }
      const bytes = this.segments.get(segno);
      if (bytes === undefined) return { kind: 'need', segno };
      if (bytes === null) return { kind: 'end', reason: `record at ${formatLsn(pos)} is incomplete: WAL segment ${this.fileName(segno)} does not exist`, foreign: false };
      const available = Math.min(segmentSize - offset, n - got, bytes.length - offset);
      if (available <= 0) return { kind: 'end', reason: `record at ${formatLsn(pos)} is incomplete: WAL segment ${this.fileName(segno)} ends at offset ${bytes.length}`, foreign: false };
      if (out === null && available === n) return { kind: 'bytes', bytes: bytes.subarray(offset, offset + n), end: p + n };
      out ??= new Uint8Array(n);
      out.set(bytes.subarray(offset, offset + available), got);
      got += available;
      p += available;
    }
    return { kind: 'bytes', bytes: out!, end: p };
  }

  private forgetBefore(segno: SegmentNumber): void {
    for (const held of this.segments.keys()) if (held < segno) this.segments.delete(held);
  }
}
