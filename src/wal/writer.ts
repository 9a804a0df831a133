/*
 * writer.ts — the WAL writer's core, without I/O: placing records in the stream and cutting
 * the stream into writes for segment files.
 *
 * `insert` gives a record its LSN (the current insert position), links it to the previous
 * record, pads it to 8 bytes and appends it to the pending stream; when the stream enters a
 * new segment it first appends that segment's header, with `remLen` set when a record runs
 * on from the previous file. `takeWrites(upto)` hands over everything pending below `upto`
 * as per-file writes, which the walwriter actor performs and flushes; what was handed over
 * is "written" from this core's point of view, and durability is the actor's to track.
 *
 * Owned state: `insertLsn` (only grows), `prevLsn` (start of the last record), `writtenLsn`
 * (only grows, never past insertLsn). The pending stream is bounded by the caller, who takes
 * writes at least every commit and every `wal_writer_delay`.
 */
import { assert } from '../assert.js';
import { maxAlign, type Lsn } from './lsn.js';
import { encodeRecord, isSwitchRecord, type WalRecordInput } from './record.js';
import {
  encodeSegmentHeader, isValidSegmentSize, SEGMENT_HEADER_SIZE, segmentStart, segnoOf,
  type SegmentNumber, type SystemIdentifier, type TimelineId,
} from './segment.js';

export interface SegmentWrite {
  readonly segno: SegmentNumber;
  /** Byte offset within the segment file. */
  readonly offset: number;
  readonly bytes: Uint8Array;
}

export interface InsertResult {
  readonly lsn: Lsn;
  /** Where the next record starts: what a commit waits to be flushed (a switch: its segment's end). */
  readonly endLsn: Lsn;
  /** Just past the record itself, alignment included (a switch record's own end: what pg_switch_wal() returns). */
  readonly recordEnd: Lsn;
}

export interface WalWriterCoreOptions {
  readonly systemIdentifier: SystemIdentifier;
  readonly timeline: TimelineId;
  readonly segmentSize: number;
  /** Where the next record goes: just past the last valid record (after recovery). */
  readonly insertLsn: Lsn;
  /** Start of the last valid record, or InvalidLsn for a brand new WAL. */
  readonly prevLsn: Lsn;
}

interface Piece {
  readonly lsn: Lsn;
  readonly bytes: Uint8Array;
}

export class WalWriterCore {
  readonly segmentSize: number;
  private timelineId: TimelineId;
  private readonly systemIdentifier: SystemIdentifier;
  private insertPos: Lsn;
  private prev: Lsn;
  private written: Lsn;
  private pending: Piece[] = [];
  private pendingBytes = 0;

  constructor(options: WalWriterCoreOptions) {
    assert(isValidSegmentSize(options.segmentSize), `invalid segment size ${options.segmentSize}`);
    assert(options.insertLsn % 8 === 0, 'the insert position is 8-byte aligned');
    assert(options.insertLsn % options.segmentSize === 0 || options.insertLsn % options.segmentSize >= SEGMENT_HEADER_SIZE,
      'the insert position is never inside a segment header');
    this.segmentSize = options.segmentSize;
    this.timelineId = options.timeline;
    this.systemIdentifier = options.systemIdentifier;
    this.insertPos = options.insertLsn;
    this.prev = options.prevLsn;
    this.written = options.insertLsn;
  }

  get insertLsn(): Lsn {
    return this.insertPos;
  }

  get prevLsn(): Lsn {
    return this.prev;
  }

  get writtenLsn(): Lsn {
    return this.written;
  }

  get timeline(): TimelineId {
    return this.timelineId;
  }

  /** Bytes inserted but not yet taken for writing. */
  get pendingByteCount(): number {
    return this.pendingBytes;
  }

  insert(input: WalRecordInput): InsertResult {
    const record = encodeRecord(input, this.prev);
    if (this.insertPos % this.segmentSize === 0) this.appendHeader(segnoOf(this.insertPos, this.segmentSize), 0);
    const lsn = this.insertPos;
    const padded = maxAlign(record.length);
    let consumed = 0;
    while (consumed < padded) {
      const room = this.segmentSize - (this.insertPos % this.segmentSize);
      const take = Math.min(room, padded - consumed);
      const piece = consumed === 0 && take === padded && padded === record.length ? record : this.slicePadded(record, consumed, take);
      this.append(piece);
      consumed += take;
      if (consumed < padded) {
        // The record runs on into the next file: that file's header says how much of it is left.
        const remaining = Math.max(0, record.length - consumed);
        this.appendHeader(segnoOf(this.insertPos, this.segmentSize), remaining);
      }
    }
    this.prev = lsn;
    const recordEnd = this.insertPos;
    if (isSwitchRecord(input) && this.insertPos % this.segmentSize !== 0) {
      // The segment is finished: zeroes to its end (they compress, and a reader skips them).
      this.append(new Uint8Array(this.segmentSize - (this.insertPos % this.segmentSize)));
    }
    // As in PostgreSQL, a record's end includes its alignment padding: the next record starts there.
    return { lsn, endLsn: this.insertPos, recordEnd };
  }

  /** Everything pending below `upto` (default: all of it), cut into per-segment writes. */
  takeWrites(upto: Lsn = this.insertPos): SegmentWrite[] {
    assert(upto <= this.insertPos, 'cannot write past the insert position');
    const writes: SegmentWrite[] = [];
    let batch: Piece[] = [];
    const flushBatch = (): void => {
      if (batch.length === 0) return;
      const first = batch[0]!;
      const segno = segnoOf(first.lsn, this.segmentSize);
      const bytes = batch.length === 1 ? first.bytes : concat(batch.map((p) => p.bytes));
      writes.push({ segno, offset: first.lsn - segmentStart(segno, this.segmentSize), bytes });
      batch = [];
    };
    while (this.pending.length > 0 && this.written < upto) {
      const piece = this.pending[0]!;
      const pieceEnd = piece.lsn + piece.bytes.length;
      let taken = piece;
      if (pieceEnd > upto) {
        const cut = upto - piece.lsn;
        taken = { lsn: piece.lsn, bytes: piece.bytes.subarray(0, cut) };
        this.pending[0] = { lsn: upto, bytes: piece.bytes.subarray(cut) };
      } else {
        this.pending.shift();
      }
      const last = batch.at(-1);
      if (last !== undefined && segnoOf(last.lsn, this.segmentSize) !== segnoOf(taken.lsn, this.segmentSize)) flushBatch();
      batch.push(taken);
      this.written = taken.lsn + taken.bytes.length;
      this.pendingBytes -= taken.bytes.length;
    }
    flushBatch();
    return writes;
  }

  private appendHeader(segno: SegmentNumber, remLen: number): void {
    assert(this.insertPos === segmentStart(segno, this.segmentSize), 'a segment header opens its segment');
    this.append(encodeSegmentHeader({
      systemIdentifier: this.systemIdentifier, timeline: this.timelineId, segno, segmentSize: this.segmentSize, remLen,
    }));
  }

  private append(bytes: Uint8Array): void {
    // Pieces never straddle a segment boundary: takeWrites relies on it.
    assert(segnoOf(this.insertPos, this.segmentSize) === segnoOf(this.insertPos + bytes.length - 1, this.segmentSize), 'a piece stays in one segment');
    this.pending.push({ lsn: this.insertPos, bytes });
    this.insertPos += bytes.length;
    this.pendingBytes += bytes.length;
  }

  /** `length` bytes of the record from `from`, zero-padded past its end. */
  private slicePadded(record: Uint8Array, from: number, length: number): Uint8Array {
    if (from + length <= record.length) return record.subarray(from, from + length);
    const out = new Uint8Array(length);
    if (from < record.length) out.set(record.subarray(from));
    return out;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
