/*
 * timeline.ts — timelines and their history files, as PostgreSQL writes them.
 *
 * Each promotion starts a new timeline: WAL from the switch point on carries the new
 * timeline's ID in its file names (00000002000000000000000A) and segment headers. The new
 * timeline's history file (`00000002.history`, in pg_wal and the archive) lists every
 * ancestor and where it was left, one line each, oldest first, in PostgreSQL's format:
 *
 *   1	0/3000158	no recovery target specified
 *
 * (parent timeline, the LSN where WAL switched to the child, a reason). Timeline 1 has no
 * history file. Reading WAL across a switch, the segment holding a switch point is read from
 * the newer timeline's file, which begins with a copy of the older one up to that point.
 */
import { formatLsn, parseLsn, type Lsn } from './lsn.js';
import { checkSegmentHeader, encodeSegmentHeader, isHeaderProblem, segmentStart, segnoOf, type SegmentNumber, type SystemIdentifier, type TimelineId } from './segment.js';

/** One timeline of a history: WAL from `begin` (inclusive) to `end` (exclusive; null: still open). */
export interface TimelineSpan {
  readonly timeline: TimelineId;
  readonly begin: Lsn;
  readonly end: Lsn | null;
}

/** An ancestor line of a history file. */
export interface HistoryEntry {
  readonly parent: TimelineId;
  readonly switchpoint: Lsn;
  readonly reason: string;
}

export function historyFileName(timeline: TimelineId): string {
  return `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
}

/** `0000000A.history` → 10; null for any other name. */
export function parseHistoryFileName(name: string): TimelineId | null {
  const m = /^([0-9A-F]{8})\.history$/.exec(name);
  if (m === null) return null;
  const timeline = parseInt(m[1]!, 16);
  return timeline > 0 ? timeline : null;
}

export function formatHistory(entries: readonly HistoryEntry[]): string {
  return entries.map((e) => `${e.parent}\t${formatLsn(e.switchpoint)}\t${e.reason}\n`).join('');
}

/**
 * Reads a history file; `timeline` is the one it belongs to. A malformed line is an error
 * naming the file and line, as PostgreSQL's readTimeLineHistory says it.
 */
export function parseHistory(text: string, timeline: TimelineId, path: string): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)(?:\s+(.*))?$/.exec(line);
    if (m === null) throw new Error(`syntax error in history file "${path}" line ${i + 1}: ${line}`);
    const parent = Number(m[1]);
    const previous = entries.at(-1);
    if (previous !== undefined && parent <= previous.parent) throw new Error(`invalid data in history file "${path}" line ${i + 1}: timeline IDs must be in increasing sequence`);
    if (parent >= timeline) throw new Error(`invalid data in history file "${path}" line ${i + 1}: timeline IDs must be less than child timeline's ID`);
    entries.push({ parent, switchpoint: parseLsn(m[2]!), reason: m[3] ?? '' });
  }
  return entries;
}

/** The spans of `timeline` and its ancestors, oldest first. */
export function timelineSpans(timeline: TimelineId, history: readonly HistoryEntry[]): TimelineSpan[] {
  const spans: TimelineSpan[] = [];
  let begin: Lsn = 0;
  for (const entry of history) {
    spans.push({ timeline: entry.parent, begin, end: entry.switchpoint });
    begin = entry.switchpoint;
  }
  spans.push({ timeline, begin, end: null });
  return spans;
}

/**
 * The timeline whose file holds segment `segno`: the newest one begun before the segment
 * ends (a switch segment is read from the new timeline's file, which copies the old part).
 */
export function timelineOfSegment(spans: readonly TimelineSpan[], segno: SegmentNumber, segmentSize: number): TimelineId {
  const segmentEnd = segmentStart(segno + 1, segmentSize);
  let chosen = spans[0]!.timeline;
  for (const span of spans) if (span.begin < segmentEnd) chosen = span.timeline;
  return chosen;
}

/** The timeline `lsn` belongs to. */
export function timelineOfLsn(spans: readonly TimelineSpan[], lsn: Lsn): TimelineId {
  for (const span of spans) if (span.end === null || lsn < span.end) return span.timeline;
  return spans.at(-1)!.timeline;
}

/**
 * The new timeline's first file at a promotion: the segment holding the switch point, as the
 * old timeline wrote it up to that point (zeroes after), its header on the new timeline.
 */
export function switchSegmentCopy(
  old: Uint8Array, switchLsn: Lsn, segmentSize: number, systemIdentifier: SystemIdentifier, oldTimeline: TimelineId, newTimeline: TimelineId,
): Uint8Array {
  const segno = segnoOf(switchLsn, segmentSize);
  const offset = switchLsn - segmentStart(segno, segmentSize);
  const copy = new Uint8Array(segmentSize);
  copy.set(old.subarray(0, Math.min(offset, old.length)));
  const header = checkSegmentHeader(old, 0, { systemIdentifier, timeline: oldTimeline, segno, segmentSize }, 'the switch segment');
  const remLen = isHeaderProblem(header) ? 0 : header.remLen;
  copy.set(encodeSegmentHeader({ systemIdentifier, timeline: newTimeline, segno, segmentSize, remLen }), 0);
  return copy;
}
