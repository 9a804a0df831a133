/*
 * rewind.ts — what pg_rewind works out before it copies anything: where a former primary's
 * timeline and the new primary's parted, and which of the former primary's transactions
 * lie past that point (they exist nowhere else, and the rewind discards them).
 *
 * Both data directories are on this machine, as with `pg_rewind --source-pgdata`: each
 * one's timeline is the newest it has a history file for (or its control file's), the
 * histories give the last timeline the two share and where each left it, and the earlier
 * of those two points is where they diverged. The former primary's WAL is then read from
 * there to its end, along its own timeline history, and every commit record found is a
 * discarded transaction — marked acknowledged if the server recorded that it told a
 * client so (pg_acknowledged/acks, see shmem's acknowledge), with the level it was
 * acknowledged at.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACK_LOG } from '../actors/shmem.js';
import { CONTROL_FILE_PATH, decodeControlFile, type ControlFile } from '../storage/control.js';
import type { XactBody } from '../storage/records.js';
import { Rmgr, XactInfo } from '../storage/rmgr.js';
import { formatLsn, InvalidLsn, type Lsn } from '../wal/lsn.js';
import { WalReader } from '../wal/reader.js';
import { segmentFileName } from '../wal/segment.js';
import { historyFileName, parseHistory, parseHistoryFileName, timelineSpans, type TimelineSpan } from '../wal/timeline.js';

/** A transaction of the former primary that the rewind throws away. */
export interface DiscardedTransaction {
  readonly xid: number;
  /** Where its commit record ends (what pg_current_wal_lsn() showed after it). */
  readonly commitLsn: string;
  /** Its commit time, as its commit record says. */
  readonly committedAt: string;
  /** Whether a client was told it committed. */
  readonly acknowledged: boolean;
  /** synchronous_commit it was acknowledged at (local when a wait for standbys was cancelled); null if not acknowledged. */
  readonly level: string | null;
}

export interface RewindPlan {
  readonly targetTimeline: number;
  readonly sourceTimeline: number;
  /** The last timeline both share, and where they parted on it. */
  readonly commonTimeline: number;
  readonly divergedAt: Lsn;
  /** Where the former primary's WAL ends. */
  readonly targetEnd: Lsn;
  readonly discarded: readonly DiscardedTransaction[];
}

interface Lineage {
  readonly control: ControlFile;
  readonly timeline: number;
  readonly spans: TimelineSpan[];
}

/** A data directory's timeline (the newest it has a history of) and that timeline's lineage. */
function lineage(dataDir: string): Lineage {
  const control = decodeControlFile(readFileSync(join(dataDir, CONTROL_FILE_PATH)), join(dataDir, CONTROL_FILE_PATH));
  let timeline = control.timeline;
  for (const name of readdirSync(join(dataDir, 'pg_wal'))) timeline = Math.max(timeline, parseHistoryFileName(name) ?? 0);
  const historyPath = join(dataDir, 'pg_wal', historyFileName(timeline));
  const history = timeline === 1 ? [] : parseHistory(readFileSync(historyPath, 'utf8'), timeline, historyPath);
  return { control, timeline, spans: timelineSpans(timeline, history) };
}

/**
 * Where target (the former primary) and source (the new primary) diverged, and what the
 * target has past that point. Throws, saying why and what to do, when there is nothing to
 * rewind to.
 */
export function planRewind(targetDir: string, sourceDir: string): RewindPlan {
  const target = lineage(targetDir);
  const source = lineage(sourceDir);
  if (target.control.systemIdentifier !== source.control.systemIdentifier) {
    throw new Error(`source and target clusters are from different systems (${source.control.systemIdentifier} and ${target.control.systemIdentifier}): make the standby again from a base backup of the source`);
  }
  if (target.timeline === source.timeline) {
    throw new Error(`source and target cluster are on the same timeline (${source.timeline}): no rewind required; if the target should follow the source, make it a standby (standby.signal and primary_conninfo)`);
  }
  let common: { timeline: number; end: Lsn } | null = null;
  for (const t of target.spans) {
    const s = source.spans.find((span) => span.timeline === t.timeline && span.begin === t.begin);
    if (s === undefined) break;
    const end = Math.min(t.end ?? Number.MAX_SAFE_INTEGER, s.end ?? Number.MAX_SAFE_INTEGER);
    common = { timeline: t.timeline, end };
  }
  if (common === null) {
    throw new Error("could not find common ancestor of the source and target cluster's timelines: make the standby again from a base backup of the source");
  }
  const { records, end, missing } = readFrom(targetDir, target, common.end);
  // The target's WAL must be there up to its last checkpoint at least: what it removed cannot be listed.
  if (missing !== null && end < target.control.checkpointLsn) {
    throw new Error(`could not read the target's WAL from ${formatLsn(common.end)}: WAL segment ${missing} has been removed, so the transactions it would discard cannot be listed: make the standby again from a base backup of the source`);
  }
  const acks = readAcks(targetDir);
  const discarded = records.map((r): DiscardedTransaction => {
    const ack = acks.get(`${r.xid} ${formatLsn(r.endLsn)}`);
    return { xid: r.xid, commitLsn: formatLsn(r.endLsn), committedAt: new Date(r.time).toISOString(), acknowledged: ack !== undefined, level: ack ?? null };
  });
  return { targetTimeline: target.timeline, sourceTimeline: source.timeline, commonTimeline: common.timeline, divergedAt: common.end, targetEnd: end, discarded };
}

/** The commit records of the target's WAL from `start` to its end, along its own timelines. */
function readFrom(dataDir: string, target: Lineage, start: Lsn): { records: { xid: number; endLsn: Lsn; time: number }[]; end: Lsn; missing: string | null } {
  const size = target.control.walSegmentSize;
  const reader = new WalReader({
    systemIdentifier: target.control.systemIdentifier, timeline: target.timeline, segmentSize: size, startLsn: start, prevLsn: InvalidLsn, timelines: target.spans,
  });
  const records: { xid: number; endLsn: Lsn; time: number }[] = [];
  let missing: string | null = null;
  for (;;) {
    const r = reader.next();
    if (r.kind === 'record') {
      const record = r.record;
      if (record.rmgr === Rmgr.Transaction && record.info === XactInfo.Commit) records.push({ xid: record.xid, endLsn: record.endLsn, time: (record.body as XactBody).time });
      continue;
    }
    if (r.kind === 'need') {
      const name = segmentFileName(reader.timelineOf(r.segno), r.segno, size);
      const path = join(dataDir, 'pg_wal', name);
      if (!existsSync(path)) missing = name;
      reader.supply(r.segno, existsSync(path) ? readFileSync(path) : null);
      continue;
    }
    return { records, end: r.lsn, missing };
  }
}

/**
 * What the target recorded as acknowledged: "xid commit-lsn" -> level. Keyed by both, as an
 * xid may be used again on another timeline after a rewind; a line cut short by a crash (no
 * newline) is not believed.
 */
function readAcks(dataDir: string): Map<string, string> {
  const acks = new Map<string, string>();
  const path = join(dataDir, ACK_LOG);
  if (!existsSync(path)) return acks;
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.pop(); // after the last newline: empty, or a torn line
  for (const line of lines) {
    const m = /^(\d+) ([0-9A-F]+\/[0-9A-F]+) (\S+)$/.exec(line);
    if (m !== null) acks.set(`${m[1]} ${m[2]}`, m[3]!);
  }
  return acks;
}
