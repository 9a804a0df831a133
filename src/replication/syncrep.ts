/*
 * syncrep.ts — which standbys are synchronous, and how far waiting commits may be released.
 *
 * A backend committing with synchronous_commit above 'local' waits until its commit LSN is
 * confirmed by the synchronous standbys: written (remote_write), flushed (on) or applied
 * (remote_apply). PostgreSQL's walsenders decide this in syncrep.c each time a standby's
 * StandbyStatusUpdate arrives; this file is that decision as pure functions over a snapshot
 * of the walsenders (PostgreSQL's WalSnd array), so that whoever owns the walsenders and the
 * wait queue can call it after any change: a reply, a walsender starting, changing state or
 * going away, a reload of synchronous_standby_names. Nothing is remembered between calls.
 *
 * A walsender's priority (SyncRepGetStandbyPriority) is the 1-based position of the first
 * entry of the list that equals its application_name, compared as pg_strcasecmp does (ASCII
 * letters in either case), or that is `*`; 0 when none does, and always 0 for a cascading
 * walsender. Under ANY every listed standby has priority 1.
 *
 * The candidates (SyncRepGetCandidateStandbys) are the walsenders with a non-zero priority,
 * in state 'streaming' or 'stopping', that have reported a flush position. Under FIRST n,
 * when there are more than n, they are ordered by priority, ties going to the earlier slot
 * of the WalSnd array (here: the lower pid), and the first n are the synchronous standbys;
 * with n or fewer all of them are. Under ANY n all candidates count.
 *
 * Commits are released (SyncRepGetSyncRecPtr) only when there are at least n: under FIRST
 * at the oldest write, flush and apply positions among the synchronous standbys, under ANY
 * at the n-th newest of each among the candidates. With fewer, nothing is released and
 * commits keep waiting (null); a level whose position comes out as PostgreSQL's invalid 0,
 * because a standby has not reported it, is null as well. The positions a caller releases up to only move forward (PostgreSQL
 * keeps WalSndCtl->lsn[mode] and raises it, never lowers it): that is the queue owner's
 * business, since a standby that drops out can make these numbers go back.
 *
 * pg_stat_replication (pg_stat_get_wal_senders) shows each walsender's priority, 0 when it
 * has no flush position yet (a pg_basebackup stream, a walsender still in startup), and its
 * sync_state: 'async' for priority 0, 'sync' (FIRST) or 'quorum' (ANY) for the candidates
 * chosen above, 'potential' for any other listed standby, such as one still in catchup.
 *
 * Parsing the setting is standby-names.ts's work; waking backends belongs to the wait queue.
 */
import { assert } from '../assert.js';
import { isValidLsn, type Lsn } from '../wal/lsn.js';
import type { StandbyNames } from './standby-names.js';

export interface SyncCandidate {
  /** The walsender's pid; a lower pid stands for an earlier slot in PostgreSQL's WalSnd array. */
  readonly pid: number;
  readonly applicationName: string;
  /** The walsender's state as pg_stat_replication shows it: startup, catchup, streaming, backup, stopping. */
  readonly state: string;
  /** Positions the standby reported; null (or PostgreSQL's invalid 0) when not reported yet. */
  readonly write: Lsn | null;
  readonly flush: Lsn | null;
  readonly apply: Lsn | null;
  /** A walsender on a standby, feeding a cascaded standby: never synchronous. */
  readonly cascaded?: boolean;
}

export interface SyncRow {
  /** pg_stat_replication.sync_priority */
  readonly priority: number;
  /** pg_stat_replication.sync_state */
  readonly state: 'sync' | 'potential' | 'quorum' | 'async';
}

export interface ReleasedPositions {
  readonly write: Lsn | null;
  readonly flush: Lsn | null;
  readonly apply: Lsn | null;
}

const NOTHING_RELEASED: ReleasedPositions = { write: null, flush: null, apply: null };

/** pg_strcasecmp equality: ASCII letters fold, every other character compares as is. */
function equalsIgnoringAsciiCase(a: string, b: string): boolean {
  const fold = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return a.length === b.length && fold(a) === fold(b);
}

/**
 * The priority a walsender serving `applicationName` takes under `config`
 * (SyncRepGetStandbyPriority): list position of its first match, 1 for any match under ANY,
 * 0 when not listed or when there is no configuration.
 */
export function standbyPriority(config: StandbyNames | null, applicationName: string): number {
  if (config === null) return 0;
  const index = config.members.findIndex((name) => name === '*' || equalsIgnoringAsciiCase(name, applicationName));
  if (index < 0) return 0;
  return config.method === 'priority' ? index + 1 : 1;
}

/** PostgreSQL's XLogRecPtrIsInvalid: not reported, or reported as 0. */
const isInvalid = (lsn: Lsn | null): boolean => lsn === null || lsn === 0;
const orInvalid = (lsn: Lsn | null): Lsn => lsn ?? 0;

interface Ranked {
  readonly candidate: SyncCandidate;
  readonly priority: number;
}

/** The walsenders in WalSnd array order, checked once: our own snapshot, so asserted. */
function inSlotOrder(candidates: readonly SyncCandidate[]): SyncCandidate[] {
  const sorted = [...candidates].sort((a, b) => a.pid - b.pid);
  for (let i = 0; i < sorted.length; i++) {
    const c = sorted[i] as SyncCandidate;
    assert(i === 0 || (sorted[i - 1] as SyncCandidate).pid !== c.pid, `walsender pid ${c.pid} appears twice`);
    for (const lsn of [c.write, c.flush, c.apply]) assert(lsn === null || isValidLsn(lsn), `not an LSN: ${lsn}`);
  }
  return sorted;
}

const configuredPriority = (config: StandbyNames | null, c: SyncCandidate): number =>
  c.cascaded === true ? 0 : standbyPriority(config, c.applicationName);

/**
 * The synchronous standbys of this moment (SyncRepGetCandidateStandbys), in the order
 * PostgreSQL holds them: by priority when it had to choose among more than num, else by slot.
 */
function synchronousStandbys(config: StandbyNames, slots: readonly SyncCandidate[]): Ranked[] {
  const eligible: Ranked[] = [];
  for (const candidate of slots) {
    const priority = configuredPriority(config, candidate);
    if (candidate.state !== 'streaming' && candidate.state !== 'stopping') continue;
    if (priority === 0) continue;
    if (isInvalid(candidate.flush)) continue;
    eligible.push({ candidate, priority });
  }
  if (config.method === 'priority' && eligible.length > config.num) {
    eligible.sort((a, b) => a.priority - b.priority || a.candidate.pid - b.candidate.pid);
    return eligible.slice(0, config.num);
  }
  return eligible;
}

/** pg_stat_replication's sync_priority and sync_state for every candidate, by pid. */
export function syncStates(config: StandbyNames | null, candidates: readonly SyncCandidate[]): Map<number, SyncRow> {
  const slots = inSlotOrder(candidates);
  const chosen = new Set(config === null ? [] : synchronousStandbys(config, slots).map((r) => r.candidate.pid));
  const rows = new Map<number, SyncRow>();
  for (const c of slots) {
    // A walsender that never reported a flush position (pg_basebackup's stream) shows as async.
    const priority = isInvalid(c.flush) ? 0 : configuredPriority(config, c);
    let state: SyncRow['state'];
    if (priority === 0) state = 'async';
    else if (!chosen.has(c.pid)) state = 'potential';
    else state = config?.method === 'quorum' ? 'quorum' : 'sync';
    rows.set(c.pid, { priority, state });
  }
  return rows;
}

/** SyncRepGetOldestSyncRecPtr: an invalid running minimum is replaced by the next value, as there. */
function oldest(values: readonly Lsn[]): Lsn {
  let result = 0;
  for (const value of values) if (result === 0 || result > value) result = value;
  return result;
}

/** SyncRepGetNthLatestSyncRecPtr: the nth value counting down from the newest. */
function nthNewest(values: readonly Lsn[], nth: number): Lsn {
  assert(nth > 0 && nth <= values.length, `the ${nth}th newest of ${values.length} positions`);
  return [...values].sort((a, b) => b - a)[nth - 1] as Lsn;
}

/** What commits waiting at each level may be released up to now; null for a level when there are not enough synchronous standbys (commits keep waiting). */
export function releasedPositions(config: StandbyNames | null, candidates: readonly SyncCandidate[]): ReleasedPositions {
  if (config === null) return NOTHING_RELEASED;
  const sync = synchronousStandbys(config, inSlotOrder(candidates)).map((r) => r.candidate);
  if (sync.length < config.num) return NOTHING_RELEASED;
  const pick = (values: readonly Lsn[]): Lsn | null => {
    const lsn = config.method === 'priority' ? oldest(values) : nthNewest(values, config.num);
    return lsn === 0 ? null : lsn;
  };
  return {
    write: pick(sync.map((c) => orInvalid(c.write))),
    flush: pick(sync.map((c) => orInvalid(c.flush))),
    apply: pick(sync.map((c) => orInvalid(c.apply))),
  };
}
