/*
 * locks.ts — table-level locks in PostgreSQL's eight modes.
 *
 * Sessions hold locks until their transaction ends (a statement outside BEGIN is its own
 * transaction). `acquire` grants a lock or names a session whose lock conflicts; the caller
 * then waits for that session's transaction to end and tries again. The conflict table is
 * PostgreSQL's (src/backend/storage/lmgr/lock.c, LockConflicts). ACCESS EXCLUSIVE locks are
 * also WAL-logged by the engine, because a hot standby must take them while it replays.
 */
import type { Oid } from './catalog.js';

export const LockMode = {
  AccessShare: 1,
  RowShare: 2,
  RowExclusive: 3,
  ShareUpdateExclusive: 4,
  Share: 5,
  ShareRowExclusive: 6,
  Exclusive: 7,
  AccessExclusive: 8,
} as const;

export type LockModeNumber = (typeof LockMode)[keyof typeof LockMode];

export const LOCK_MODE_NAMES: Readonly<Record<number, string>> = {
  1: 'AccessShareLock', 2: 'RowShareLock', 3: 'RowExclusiveLock', 4: 'ShareUpdateExclusiveLock',
  5: 'ShareLock', 6: 'ShareRowExclusiveLock', 7: 'ExclusiveLock', 8: 'AccessExclusiveLock',
};

const CONFLICTS: Readonly<Record<number, readonly number[]>> = {
  1: [8],
  2: [7, 8],
  3: [5, 6, 7, 8],
  4: [4, 5, 6, 7, 8],
  5: [3, 4, 6, 7, 8],
  6: [3, 4, 5, 6, 7, 8],
  7: [2, 3, 4, 5, 6, 7, 8],
  8: [1, 2, 3, 4, 5, 6, 7, 8],
};

export function conflicts(a: number, b: number): boolean {
  return CONFLICTS[a]!.includes(b);
}

export class LockManager {
  /** relation -> session -> modes held */
  private readonly held = new Map<Oid, Map<string, Set<number>>>();
  /** session -> relations it holds something on */
  private readonly bySession = new Map<string, Set<Oid>>();

  /** Grants `mode` on `rel` to `session`, or returns a session holding a conflicting lock. */
  acquire(rel: Oid, mode: number, session: string): string | null {
    const holders = this.held.get(rel) ?? new Map<string, Set<number>>();
    for (const [other, modes] of holders) {
      if (other === session) continue;
      for (const m of modes) if (conflicts(mode, m)) return other;
    }
    const mine = holders.get(session) ?? new Set<number>();
    mine.add(mode);
    holders.set(session, mine);
    this.held.set(rel, holders);
    const rels = this.bySession.get(session) ?? new Set<Oid>();
    rels.add(rel);
    this.bySession.set(session, rels);
    return null;
  }

  holds(rel: Oid, mode: number, session: string): boolean {
    return this.held.get(rel)?.get(session)?.has(mode) ?? false;
  }

  holdsAny(session: string): boolean {
    return (this.bySession.get(session)?.size ?? 0) > 0;
  }

  /** End of the session's transaction: everything it held is released. */
  releaseAll(session: string): void {
    for (const rel of this.bySession.get(session) ?? []) {
      const holders = this.held.get(rel);
      holders?.delete(session);
      if (holders?.size === 0) this.held.delete(rel);
    }
    this.bySession.delete(session);
  }

  /** pg_locks-style rows: relation, session, mode name. */
  rows(): { rel: Oid; session: string; mode: string }[] {
    const out: { rel: Oid; session: string; mode: string }[] = [];
    for (const [rel, holders] of this.held) for (const [session, modes] of holders) for (const m of modes) out.push({ rel, session, mode: LOCK_MODE_NAMES[m]! });
    return out;
  }
}
