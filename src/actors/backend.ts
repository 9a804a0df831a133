/*
 * backend.ts — one client session: its settings, its statements, one at a time.
 *
 * A `Query` may hold several statements; the backend parses them (libpg-query), answers
 * SET / SET LOCAL / RESET / SHOW itself from the session's settings, sends CHECKPOINT to the
 * checkpointer, and everything else to shmem, waiting for each result before sending the
 * next. The reply carries the last statement's result, or the first error (later statements
 * are not run, as in PostgreSQL's simple query protocol). When the session ends its open
 * transaction is rolled back.
 */
import { PgError, SqlState, type PgErrorFields } from '../errors.js';
import { checkValue, requireSetting } from '../config/settings.js';
import { ServerConfig, SessionConfig } from '../config/store.js';
import { defineBehaviour, NORMAL, type Actor, type ActorRef, type ExitReason, type Message } from '../runtime/actor.js';
import type { Context } from '../runtime/context.js';
import { constValue, functionName, unwrap, type Node } from '../sql/expr.js';
import { parseSql, type ParsedStatement } from '../sql/parse.js';
import { commandOnly, type QueryResult } from '../sql/result.js';
import type { Isolation } from '../sql/transaction.js';
import type { CheckpointNow } from './checkpointer.js';
import { conflictKindOf } from '../conflicts/detect.js';
import type { CancelRequest, EndSession, Execute, Executed, SwitchWal } from './shmem.js';

export interface BackendArgs {
  readonly session: string;
  readonly shmem: ActorRef;
  readonly checkpointer: ActorRef;
  /** postgresql.conf and postgresql.auto.conf as read at server start or last reload. */
  readonly confFiles: readonly { readonly path: string; readonly text: string }[];
  readonly serverOptions: Readonly<Record<string, string>>;
  /** Settings the client connected with (PGOPTIONS-style). */
  readonly sessionSettings: Readonly<Record<string, string>>;
  readonly database: string;
  /** The server is a standby in recovery: every transaction is read-only. */
  readonly inRecovery?: boolean;
}

export interface Query extends Message {
  readonly type: 'Query';
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly replyTo: ActorRef;
  readonly tag: number;
}

export type QueryDone =
  | (Message & { readonly type: 'QueryDone'; readonly tag: number; readonly ok: true; readonly result: QueryResult })
  | (Message & { readonly type: 'QueryDone'; readonly tag: number; readonly ok: false; readonly error: PgErrorFields });

/** Statement texts a session keeps parsed. */
const PARSE_CACHE_SIZE = 64;

interface Running {
  readonly query: Query;
  readonly statements: ParsedStatement[];
  last: QueryResult;
}

/** Asks the postmaster to rewrite postgresql.auto.conf (value null: RESET). */
export interface AlterSystem extends Message {
  readonly type: 'AlterSystem';
  readonly name: string;
  readonly value: string | null;
  readonly replyTo: ActorRef;
  readonly tag: number;
}

/** pg_promote(): the postmaster ends recovery (answered with ServerCommandDone: true, or false if not in time). */
export interface PromoteRequest extends Message {
  readonly type: 'Promote';
  readonly wait: boolean;
  readonly waitSeconds: number;
  readonly replyTo: ActorRef;
  readonly tag: number;
}

/** The server left recovery: this session may write from its next transaction on. */
export interface Promoted extends Message { readonly type: 'Promoted' }

/** pg_reload_conf(): the postmaster re-reads the configuration files. */
export interface ReloadConf extends Message {
  readonly type: 'ReloadConf';
  readonly replyTo: ActorRef;
  readonly tag: number;
}

export type ServerCommandDone =
  | (Message & { readonly type: 'ServerCommandDone'; readonly tag: number; readonly ok: true; readonly result: QueryResult })
  | (Message & { readonly type: 'ServerCommandDone'; readonly tag: number; readonly ok: false; readonly error: PgErrorFields });

/**
 * Replay could not wait longer for this session (a hot standby conflict): its transaction is
 * gone and the session ends with this FATAL — at once if a query is running, else with the
 * next query, as a client of PostgreSQL learns it.
 */
export interface RecoveryConflict extends Message {
  readonly type: 'RecoveryConflict';
  readonly error: PgErrorFields;
}

export interface ConfigReloaded extends Message {
  readonly type: 'ConfigReloaded';
  readonly confFiles: readonly { readonly path: string; readonly text: string }[];
}

/**
 * `SELECT f()` and nothing else, for the functions another process carries out:
 * pg_reload_conf() (the postmaster), pg_switch_wal() (WAL insertion, through shmem).
 */
function isLoneCall(node: Node, name: string): boolean {
  const targets = (node['targetList'] as Node[] | undefined) ?? [];
  if (targets.length !== 1 || node['fromClause'] !== undefined) return false;
  const [kind, body] = unwrap(unwrap(targets[0]!)[1]['val'] as Node);
  return kind === 'FuncCall' && functionName(body) === name;
}

class Backend implements Actor {
  private readonly settings: SessionConfig;
  private readonly server: ServerConfig;
  private readonly waiting: Query[] = [];
  private running: Running | null = null;
  private tag = 0;

  /** The server is in recovery (a hot standby) until it is promoted. */
  private inRecovery: boolean;

  constructor(private readonly args: BackendArgs) {
    this.inRecovery = args.inRecovery === true;
    this.server = new ServerConfig(args.serverOptions);
    this.server.load(args.confFiles);
    this.settings = new SessionConfig(this.server);
    for (const [name, value] of Object.entries(args.sessionSettings)) this.settings.set(name, value, false);
  }

  stopping(reason: ExitReason, ctx: Context): 'now' {
    // The client saying goodbye stops us normally; anything else is the server ending the session.
    ctx.send(this.args.shmem, { type: 'EndSession', session: this.args.session, terminated: reason.kind !== 'normal' } satisfies EndSession);
    return 'now';
  }

  receive(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case 'Query':
        this.waiting.push(msg as Query);
        return this.next(ctx);
      case 'Executed':
      case 'CheckpointDone':
      case 'ServerCommandDone':
        return this.onStatementDone(msg as Executed | { type: 'CheckpointDone'; tag: number } | ServerCommandDone, ctx);
      case 'Terminate':
        // libpq's Terminate message: the client leaves.
        ctx.stop(ctx.self, NORMAL);
        return;
      case 'Cancel':
        // The client's cancel request (libpq's PQcancel): what waits in shmem for this session stops waiting.
        ctx.send(this.args.shmem, { type: 'CancelRequest', session: this.args.session } satisfies CancelRequest);
        return;
      case 'RecoveryConflict':
        return this.onRecoveryConflict(msg as RecoveryConflict, ctx);
      case 'Promoted':
        this.inRecovery = false;
        return;
      case 'ConfigReloaded':
        // A reload changes what this session sees for settings it did not SET itself.
        this.server.load((msg as ConfigReloaded).confFiles);
        return;
    }
  }

  private onRecoveryConflict(msg: RecoveryConflict, ctx: Context): void {
    const error = msg.error;
    ctx.log('fatal', error.message, { event: 'conflict', kind: conflictKindOf(error.detail), terminated: true });
    if (error.detail !== undefined) ctx.log('info', `DETAIL:  ${error.detail}`);
    if (error.hint !== undefined) ctx.log('info', `HINT:  ${error.hint}`);
    this.terminatedBy = new PgError(error);
    if (this.running !== null) {
      const query = this.running.query;
      this.running = null;
      this.waiting.unshift(query);
    }
    this.next(ctx);
  }

  /** The FATAL that ended this session; the client hears it with its next query. */
  private terminatedBy: PgError | null = null;

  private next(ctx: Context): void {
    if (this.running !== null) return;
    const query = this.waiting.shift();
    if (query === undefined) return;
    if (this.terminatedBy !== null) {
      ctx.send(query.replyTo, { type: 'QueryDone', tag: query.tag, ok: false, error: this.terminatedBy.toFields() } satisfies QueryDone);
      ctx.stop(ctx.self, NORMAL);
      return;
    }
    let statements: readonly ParsedStatement[];
    try {
      statements = this.parse(query.sql);
    } catch (err) {
      return this.finish(query, err, ctx);
    }
    this.running = { query, statements: [...statements], last: commandOnly('EMPTY') };
    this.step(ctx);
  }

  /**
   * Parses, remembering the last PARSE_CACHE_SIZE texts: a driver sending the same
   * parameterized statement again (`INSERT ... VALUES ($1, $2)`) skips the parser, as a
   * prepared statement would. Parse trees are never modified, so sharing them is safe.
   */
  private parse(sql: string): readonly ParsedStatement[] {
    const cached = this.parsed.get(sql);
    if (cached !== undefined) {
      this.parsed.delete(sql);
      this.parsed.set(sql, cached);
      return cached;
    }
    const statements = parseSql(sql);
    this.parsed.set(sql, statements);
    if (this.parsed.size > PARSE_CACHE_SIZE) this.parsed.delete(this.parsed.keys().next().value!);
    return statements;
  }

  private readonly parsed = new Map<string, readonly ParsedStatement[]>();

  /** Runs statements until one has to go to another actor, or all are done. */
  private step(ctx: Context): void {
    const run = this.running!;
    for (;;) {
      const stmt = run.statements.shift();
      if (stmt === undefined) return this.finish(run.query, run.last, ctx);
      try {
        const local = this.local(stmt, ctx);
        if (local === 'sent') return;
        if (local !== null) {
          run.last = local;
          continue;
        }
      } catch (err) {
        return this.finish(run.query, err, ctx);
      }
      this.tag++;
      ctx.send(this.args.shmem, {
        type: 'Execute', session: this.args.session, statement: stmt, params: run.query.params,
        synchronousCommit: this.settings.get('synchronous_commit') as string,
        isolation: this.settings.get('default_transaction_isolation') as Isolation,
        database: this.args.database, readOnly: this.settings.get('default_transaction_read_only') === true,
        replyTo: ctx.self, tag: this.tag,
      } satisfies Execute);
      return;
    }
  }

  private onStatementDone(msg: Executed | { type: 'CheckpointDone'; tag: number } | ServerCommandDone, ctx: Context): void {
    const run = this.running;
    if (run === null || msg.tag !== this.tag) return;
    if (msg.type === 'CheckpointDone') {
      run.last = commandOnly('CHECKPOINT');
      return this.step(ctx);
    }
    if (msg.type === 'ServerCommandDone') {
      if (!msg.ok) return this.finish(run.query, new PgError(msg.error), ctx);
      run.last = msg.result;
      return this.step(ctx);
    }
    if (!msg.ok) {
      // As PostgreSQL logs it: a statement replay cancelled.
      if (msg.error.message === 'canceling statement due to conflict with recovery') {
        ctx.log('error', msg.error.message, { event: 'conflict', kind: conflictKindOf(msg.error.detail), terminated: false });
        if (msg.error.detail !== undefined) ctx.log('info', `DETAIL:  ${msg.error.detail}`);
      }
      return this.finish(run.query, new PgError(msg.error), ctx);
    }
    run.last = msg.result;
    if (msg.result.command === 'COMMIT' || msg.result.command === 'ROLLBACK') this.settings.endTransaction();
    this.step(ctx);
  }

  /** Statements the session answers itself; null for those shmem runs. */
  private local(stmt: ParsedStatement, ctx: Context): QueryResult | 'sent' | null {
    const node = stmt.node;
    switch (stmt.kind) {
      case 'VariableSetStmt':
        return this.set(node);
      case 'VariableShowStmt': {
        const name = (node['name'] as string).toLowerCase();
        if (name === 'all') throw new PgError({ code: SqlState.FeatureNotSupported, message: 'SHOW ALL is not supported by walship yet' });
        const value = this.show(name);
        return { command: 'SHOW', rowCount: 1, columns: [{ name, type: 'text' }], rows: [{ [name]: value }] };
      }
      case 'CheckPointStmt':
        this.tag++;
        ctx.send(this.args.checkpointer, { type: 'CheckpointNow', replyTo: ctx.self, tag: this.tag } satisfies CheckpointNow);
        return 'sent';
      case 'AlterSystemStmt': {
        const set = node['setstmt'] as Node;
        const name = (set['name'] as string).toLowerCase();
        const def = requireSetting(name);
        if (def.context === 'internal') throw new PgError({ code: SqlState.CantChangeRuntimeParam, message: `parameter "${def.name}" cannot be changed` });
        let value: string | null = null;
        if (set['kind'] === 'VAR_SET_VALUE') {
          value = ((set['args'] as Node[] | undefined) ?? []).map((a) => String(constValue(unwrap(a)[1]))).join(', ');
          checkValue(def, value);
        }
        this.tag++;
        ctx.send(ctx.parent, { type: 'AlterSystem', name: def.name, value, replyTo: ctx.self, tag: this.tag } satisfies AlterSystem);
        return 'sent';
      }
      case 'SelectStmt':
        if (isLoneCall(node, 'pg_reload_conf')) {
          this.tag++;
          ctx.send(ctx.parent, { type: 'ReloadConf', replyTo: ctx.self, tag: this.tag } satisfies ReloadConf);
          return 'sent';
        }
        if (isLoneCall(node, 'pg_promote')) {
          // pg_promote(wait => true, wait_seconds => 60): the postmaster promotes; the reply says whether it did in time.
          const call = unwrap(unwrap(((node['targetList'] as Node[])[0]!))[1]['val'] as Node)[1];
          const args = ((call['args'] as Node[] | undefined) ?? []).map((a) => {
            const [kind, body] = unwrap(a);
            if (kind !== 'A_Const') throw new PgError({ code: SqlState.FeatureNotSupported, message: 'pg_promote() takes constant arguments in walship' });
            return constValue(body);
          });
          const wait = args[0] === undefined ? true : args[0] === true || args[0] === 't' || args[0] === 'true';
          const waitSeconds = args[1] === undefined ? 60 : Number(args[1]);
          if (!Number.isInteger(waitSeconds) || waitSeconds <= 0) {
            throw new PgError({ code: SqlState.InvalidParameterValue, message: '"wait_seconds" must not be negative or zero' });
          }
          this.tag++;
          ctx.send(ctx.parent, { type: 'Promote', wait, waitSeconds, replyTo: ctx.self, tag: this.tag } satisfies PromoteRequest);
          return 'sent';
        }
        if (isLoneCall(node, 'pg_switch_wal')) {
          this.tag++;
          ctx.send(this.args.shmem, { type: 'SwitchWal', replyTo: ctx.self, tag: this.tag } satisfies SwitchWal);
          return 'sent';
        }
        return null;
      default:
        return null;
    }
  }

  private show(name: string): string {
    const recovery = this.inRecovery;
    switch (name) {
      case 'transaction_isolation':
        return this.settings.show('default_transaction_isolation');
      case 'transaction_read_only':
        // During hot standby it is always on (PostgreSQL forces it); otherwise the default's value.
        return recovery ? 'on' : this.settings.show('default_transaction_read_only');
      case 'in_hot_standby':
        return recovery ? 'on' : 'off';
      default:
        return this.settings.show(name);
    }
  }

  private set(node: Node): QueryResult {
    const name = node['name'] as string | undefined;
    switch (node['kind']) {
      case 'VAR_SET_VALUE': {
        const args = ((node['args'] as Node[] | undefined) ?? []).map((a) => String(constValue(unwrap(a)[1])));
        if (name === 'transaction_read_only' && checkValue(requireSetting(name), args.join(', ')) === false && this.inRecovery) {
          throw new PgError({ code: SqlState.FeatureNotSupported, message: 'cannot set transaction read-write mode during recovery' });
        }
        const target = name === 'transaction_isolation' ? 'default_transaction_isolation' : name!;
        this.settings.set(target, args.join(', '), node['is_local'] === true);
        return commandOnly('SET');
      }
      case 'VAR_SET_DEFAULT':
      case 'VAR_RESET':
        this.settings.reset(name!);
        return commandOnly(node['kind'] === 'VAR_RESET' ? 'RESET' : 'SET');
      default:
        throw new PgError({ code: SqlState.FeatureNotSupported, message: `SET form ${String(node['kind'])} is not supported by walship yet` });
    }
  }

  private finish(query: Query, outcome: QueryResult | unknown, ctx: Context): void {
    this.running = null;
    if (outcome instanceof PgError) {
      ctx.send(query.replyTo, { type: 'QueryDone', tag: query.tag, ok: false, error: outcome.toFields() } satisfies QueryDone);
    } else if (outcome instanceof Error) {
      throw outcome;
    } else {
      ctx.send(query.replyTo, { type: 'QueryDone', tag: query.tag, ok: true, result: outcome as QueryResult } satisfies QueryDone);
    }
    this.next(ctx);
  }
}

export const BACKEND = defineBehaviour(import.meta.url, 'Backend', (args: BackendArgs) => new Backend(args));
