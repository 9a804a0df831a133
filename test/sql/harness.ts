/*
 * harness.ts — the SQL engine driven without actors: one call per statement, every WAL
 * record kept, commits finished at once (as if flushed), and results or errors handed back
 * the way a client would see them.
 */
import type { PgError } from '../../src/errors.js';
import { Engine, type ExecuteOptions, type Outcome } from '../../src/sql/engine.js';
import { parseSql } from '../../src/sql/parse.js';
import type { QueryResult } from '../../src/sql/result.js';
import { redo } from '../../src/storage/redo.js';
import { DatabaseState } from '../../src/storage/state.js';
import type { WalRecordInput } from '../../src/wal/record.js';

export class Harness {
  readonly engine: Engine;
  /** Every WAL record the engine produced, in order. */
  readonly wal: WalRecordInput[] = [];
  /** Options on top of the defaults for every statement: a standby, read-only sessions, server hooks. */
  options: Partial<ExecuteOptions> = {};

  constructor(state = new DatabaseState()) {
    this.engine = new Engine(state);
  }

  /** A hot standby of this harness: its state is this one's WAL, replayed. */
  standby(): Standby {
    return new Standby(this);
  }

  run(session: string, sql: string, params: unknown[] = []): Outcome {
    const [stmt] = parseSql(sql);
    const outcome = this.engine.execute(session, stmt!, {
      params: params as never, defaultIsolation: 'read committed', now: Date.UTC(2026, 10, 22), currentWalLsn: 0x1000000, inRecovery: false, ...this.options,
    });
    this.wal.push(...outcome.records);
    if (outcome.kind === 'done' && outcome.commit !== null) this.engine.finishCommit(outcome.commit);
    return outcome;
  }

  /** Runs and expects success. */
  ok(session: string, sql: string, params: unknown[] = []): QueryResult {
    const outcome = this.run(session, sql, params);
    if (outcome.kind === 'error') throw outcome.error;
    if (outcome.kind === 'wait') throw new Error(`unexpected wait on ${outcome.blocker}`);
    return outcome.result;
  }

  rows(session: string, sql: string): unknown[] {
    return this.ok(session, sql).rows as unknown[];
  }

  error(session: string, sql: string): PgError {
    const outcome = this.run(session, sql);
    if (outcome.kind !== 'error') throw new Error(`expected an error from ${sql}, got ${outcome.kind}`);
    return outcome.error;
  }
}

/** An error as a client sees it: SQLSTATE, message, and hint when there is one. */
export function seen(error: PgError): { code: string; message: string; hint?: string } {
  return { code: error.code, message: error.message, ...(error.hint === undefined ? {} : { hint: error.hint }) };
}

/**
 * A hot standby's engine. `catchUp` replays the primary's WAL written since; the procarray
 * is the replaying side's to fill, as startup fills it from running-xacts and commit records.
 */
export class Standby extends Harness {
  private replayed = 0;

  constructor(private readonly primary: Harness) {
    super(new DatabaseState());
    this.options = { inRecovery: true };
    this.catchUp();
  }

  catchUp(): void {
    for (const record of this.primary.wal.slice(this.replayed)) redo(this.engine.state, record);
    this.replayed = this.primary.wal.length;
  }
}
