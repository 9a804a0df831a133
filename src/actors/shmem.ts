/*
 * shmem.ts — the cluster's shared memory: the one actor that owns the database state.
 *
 * PostgreSQL keeps buffers, the commit log and the procarray in shared memory, guarded by
 * locks; here one actor owns them, so each statement runs atomically and in a definite
 * order. It plays two roles, as shared memory does:
 *
 *   during recovery, startup sends it `LoadImage` (the last checkpoint's image) and
 *   `Replay` batches of WAL records, which it applies with the same redo as everything else;
 *
 *   in production, backends send `Execute`: the engine runs the statement, its WAL
 *   records go to the walwriter (the next statement waits only for their LSNs, a few
 *   microseconds), and a commit is answered once it is durable as the session's
 *   synchronous_commit asks (`local`/`on`: flushed; `off`: at once). A commit becomes
 *   visible to other sessions at that same moment. A statement that must wait for another
 *   transaction is parked and run again when that transaction ends.
 *
 * `Checkpoint` returns the state image and the LSN it corresponds to, after flushing WAL to
 * that LSN (WAL before data, as PostgreSQL's rule is). `WalEnd` answers where WAL insertion
 * continues after recovery.
 */
import { Packr, Unpackr } from 'msgpackr';
import { assert } from '../assert.js';
import type { PgErrorFields } from '../errors.js';
import { defineBehaviour, type Actor, type ActorRef, type Message } from '../runtime/actor.js';
import type { Context } from '../runtime/context.js';
import { Engine, type ExecuteOptions, type WaitKey } from '../sql/engine.js';
import type { ParsedStatement } from '../sql/parse.js';
import type { QueryResult } from '../sql/result.js';
import type { Isolation } from '../sql/transaction.js';
import type { Xid } from '../storage/clog.js';
import { redo } from '../storage/redo.js';
import { DatabaseState, type StateImage } from '../storage/state.js';
import { formatLsn, type Lsn } from '../wal/lsn.js';
import type { WalRecord, WalRecordInput } from '../wal/record.js';
import type { WalInserted, XLogFlush, XLogInsert } from './walwriter.js';

export interface Execute extends Message {
  readonly type: 'Execute';
  readonly session: string;
  readonly statement: ParsedStatement;
  readonly params: readonly unknown[];
  readonly synchronousCommit: string;
  readonly isolation: Isolation;
  readonly database: string;
  readonly replyTo: ActorRef;
  readonly tag: number;
}

export type Executed =
  | (Message & { readonly type: 'Executed'; readonly tag: number; readonly ok: true; readonly result: QueryResult })
  | (Message & { readonly type: 'Executed'; readonly tag: number; readonly ok: false; readonly error: PgErrorFields });

export interface EndSession extends Message { readonly type: 'EndSession'; readonly session: string }
export interface LoadImage extends Message { readonly type: 'LoadImage'; readonly image: Uint8Array | null }
export interface Replay extends Message { readonly type: 'Replay'; readonly records: readonly WalRecord[] }
/** The end of recovery: where WAL continues, and the cluster identity the walwriter needs. */
export interface RecoveryDone extends Message {
  readonly type: 'RecoveryDone';
  readonly endLsn: Lsn;
  readonly lastLsn: Lsn;
  /** Decimal text: a 64-bit system identifier does not fit a number. */
  readonly systemIdentifier: string;
  readonly timeline: number;
  readonly walSegmentSize: number;
}
export interface AttachWalWriter extends Message { readonly type: 'AttachWalWriter'; readonly walwriter: ActorRef }
export interface WalEndRequest extends Message { readonly type: 'WalEndRequest'; readonly replyTo: ActorRef }
export interface WalEnd extends Message {
  readonly type: 'WalEnd';
  readonly endLsn: Lsn;
  readonly lastLsn: Lsn;
  readonly systemIdentifier: string;
  readonly timeline: number;
  readonly walSegmentSize: number;
}
export interface CheckpointRequest extends Message { readonly type: 'CheckpointRequest'; readonly replyTo: ActorRef }
export interface CheckpointImage extends Message {
  readonly type: 'CheckpointImage';
  readonly image: Uint8Array;
  readonly redoLsn: Lsn;
  readonly nextXid: Xid;
  readonly nextOid: number;
  readonly running: readonly Xid[];
}
export interface InsertRecords extends Message { readonly type: 'InsertRecords'; readonly records: readonly WalRecordInput[]; readonly flush: boolean; readonly replyTo: ActorRef; readonly tag: number }

const imagePackr = new Packr({ useRecords: false, moreTypes: false });
const imageUnpackr = new Unpackr({ useRecords: false, moreTypes: false });

/**
 * A checkpoint image names the WAL position it reflects: recovery replays from there. The
 * image reaches disk before the control file names the new checkpoint, so after a crash in
 * between, the image, not the control file, says where replay must begin (replaying from the
 * older redo point would apply its WAL twice).
 */
export function encodeImage(image: StateImage, redoLsn: Lsn): Uint8Array {
  return new Uint8Array(imagePackr.pack({ redoLsn, state: image }));
}

export function decodeImage(bytes: Uint8Array): { readonly redoLsn: Lsn; readonly state: StateImage } {
  return imageUnpackr.unpack(bytes) as { redoLsn: Lsn; state: StateImage };
}

type Pending =
  | { readonly kind: 'execute'; readonly msg: Execute }
  | { readonly kind: 'endSession'; readonly session: string }
  | { readonly kind: 'checkpoint'; readonly replyTo: ActorRef }
  | { readonly kind: 'insert'; readonly msg: InsertRecords };

/** Work that waits for the walwriter's answer (its LSNs, or its flush), by tag. */
type Awaiting = (reply: WalInserted, ctx: Context) => void;

class Shmem implements Actor {
  private state = new DatabaseState();
  private engine = new Engine(this.state);
  private walwriter: ActorRef | null = null;
  private insertEnd: Lsn = 0;
  private lastRecord: Lsn = 0;
  private readonly queue: Pending[] = [];
  /** The tag of the insertion whose LSNs we wait for: nothing else runs until they arrive. */
  private inserting: number | null = null;
  private readonly awaiting = new Map<number, Awaiting>();
  private nextTag = 1;
  /** Statements waiting, by what they wait for (a transaction's end, a session's locks). */
  private readonly parked = new Map<WaitKey, Execute[]>();
  private recovered: RecoveryDone | null = null;

  receive(msg: Message, ctx: Context): void {
    switch (msg.type) {
      case 'LoadImage': {
        const image = (msg as LoadImage).image;
        this.state = image === null ? new DatabaseState() : DatabaseState.fromImage(decodeImage(image).state);
        this.engine = new Engine(this.state);
        return;
      }
      case 'Replay':
        for (const record of (msg as Replay).records) {
          redo(this.state, record);
          this.lastRecord = record.lsn;
        }
        return;
      case 'RecoveryDone':
        // Transactions that were running at the crash can never commit now.
        this.state.clog.abortUnfinished();
        this.recovered = msg as RecoveryDone;
        this.insertEnd = this.recovered.endLsn;
        this.lastRecord = this.recovered.lastLsn;
        return;
      case 'WalEndRequest': {
        const r = this.recovered!;
        ctx.send((msg as WalEndRequest).replyTo, {
          type: 'WalEnd', endLsn: this.insertEnd, lastLsn: this.lastRecord,
          systemIdentifier: r.systemIdentifier, timeline: r.timeline, walSegmentSize: r.walSegmentSize,
        } satisfies WalEnd);
        return;
      }
      case 'AttachWalWriter':
        this.walwriter = (msg as AttachWalWriter).walwriter;
        return;
      case 'Execute':
        this.queue.push({ kind: 'execute', msg: msg as Execute });
        return this.drain(ctx);
      case 'CheckpointRequest':
        this.queue.push({ kind: 'checkpoint', replyTo: (msg as CheckpointRequest).replyTo });
        return this.drain(ctx);
      case 'InsertRecords':
        this.queue.push({ kind: 'insert', msg: msg as InsertRecords });
        return this.drain(ctx);
      case 'EndSession': {
        // Whatever the session still had queued or parked dies with it (it must not run as
        // an autocommit statement of nobody's), and its transaction aborts in queue order.
        const session = (msg as EndSession).session;
        for (const [key, list] of this.parked) {
          const kept = list.filter((m) => m.session !== session);
          if (kept.length === 0) this.parked.delete(key);
          else this.parked.set(key, kept);
        }
        for (let i = this.queue.length - 1; i >= 0; i--) {
          const item = this.queue[i]!;
          if (item.kind === 'execute' && item.msg.session === session) this.queue.splice(i, 1);
        }
        this.queue.push({ kind: 'endSession', session });
        return this.drain(ctx);
      }
      case 'WalInserted': {
        const reply = msg as WalInserted;
        const waiting = this.awaiting.get(reply.tag);
        if (waiting === undefined) return;
        this.awaiting.delete(reply.tag);
        waiting(reply, ctx);
        return;
      }
    }
  }

  /** Runs queued work in order, pausing while an insertion's LSNs are outstanding. */
  private drain(ctx: Context): void {
    while (this.inserting === null && this.queue.length > 0) {
      const next = this.queue.shift()!;
      if (next.kind === 'execute') this.execute(next.msg, ctx);
      else if (next.kind === 'endSession') {
        const records = this.engine.endSession(next.session);
        if (records.length > 0) this.insert(records, ctx, (_, c) => this.wake(c));
        else this.wake(ctx);
      }
      else if (next.kind === 'checkpoint') this.checkpoint(next.replyTo, ctx);
      else {
        const m = next.msg;
        this.insert(m.records, ctx, (reply, c) => {
          if (!m.flush) c.send(m.replyTo, { ...reply, tag: m.tag });
          else this.flush(reply.endLsn, c, (flushed, c2) => c2.send(m.replyTo, { ...flushed, tag: m.tag }));
        });
      }
    }
  }

  private execute(msg: Execute, ctx: Context): void {
    const options: ExecuteOptions = {
      params: msg.params as ExecuteOptions['params'], defaultIsolation: msg.isolation, now: ctx.now(),
      currentWalLsn: this.insertEnd, inRecovery: false, database: msg.database,
    };
    const outcome = this.engine.execute(msg.session, msg.statement, options);
    if (outcome.kind === 'wait') {
      const list = this.parked.get(outcome.blocker) ?? [];
      list.push(msg);
      this.parked.set(outcome.blocker, list);
      if (outcome.records.length > 0) this.insert(outcome.records, ctx, () => {});
      return;
    }
    const reply = (): void => {
      if (outcome.kind === 'error') ctx.send(msg.replyTo, { type: 'Executed', tag: msg.tag, ok: false, error: outcome.error.toFields() } satisfies Executed);
      else ctx.send(msg.replyTo, { type: 'Executed', tag: msg.tag, ok: true, result: outcome.result } satisfies Executed);
    };
    const commit = outcome.kind === 'done' ? outcome.commit : null;
    if (outcome.records.length === 0) {
      reply();
      this.wake(ctx);
      return;
    }
    this.insert(outcome.records, ctx, (inserted, c) => {
      if (commit === null) {
        reply();
        this.wake(c);
      } else if (msg.synchronousCommit === 'off') {
        this.engine.finishCommit(commit);
        reply();
        this.wake(c);
      } else {
        // The commit becomes visible, and is acknowledged, only once it is on disk.
        this.flush(inserted.endLsn, c, () => {
          this.engine.finishCommit(commit);
          reply();
          this.wake(c);
        });
      }
    });
  }

  /** Sends records to the walwriter and holds all other work until their LSNs come back. */
  private insert(records: readonly WalRecordInput[], ctx: Context, then: (reply: WalInserted, ctx: Context) => void): void {
    assert(this.walwriter !== null, 'WAL is inserted only once the walwriter runs');
    const tag = this.nextTag++;
    assert(this.inserting === null, 'one insertion at a time');
    this.inserting = tag;
    this.awaiting.set(tag, (reply, c) => {
      assert(this.inserting === tag, 'the awaited insertion is the one answered');
      this.inserting = null;
      assert(reply.endLsn >= this.insertEnd, 'the insert position only advances');
      this.insertEnd = reply.endLsn;
      then(reply, c);
      this.drain(c);
    });
    ctx.send(this.walwriter, { type: 'XLogInsert', records, flush: false, replyTo: ctx.self, tag } satisfies XLogInsert);
  }

  private flush(upto: Lsn, ctx: Context, then: (reply: WalInserted, ctx: Context) => void): void {
    const tag = this.nextTag++;
    this.awaiting.set(tag, then);
    ctx.send(this.walwriter!, { type: 'XLogFlush', upto, replyTo: ctx.self, tag } satisfies XLogFlush);
  }

  /** Statements parked behind transactions that have ended run again. */
  private wake(ctx: Context): void {
    const ready: Execute[] = [];
    for (const [key, list] of [...this.parked]) {
      if (!this.engine.waitOver(key)) continue;
      this.parked.delete(key);
      ready.push(...list);
    }
    // First come, first served: parked statements run ahead of new work, in arrival order.
    this.queue.unshift(...ready.map((msg) => ({ kind: 'execute' as const, msg })));
    this.drain(ctx);
  }

  private checkpoint(replyTo: ActorRef, ctx: Context): void {
    const redoLsn = this.insertEnd;
    const image = encodeImage(this.state.image(), redoLsn);
    const running = [...this.engine.procarray.xids()];
    const nextXid = this.state.clog.nextXid;
    const nextOid = this.state.nextOid;
    // WAL before data: the image may only reach disk once the WAL it reflects is there.
    this.flush(redoLsn, ctx, (_, c) => {
      c.send(replyTo, { type: 'CheckpointImage', image, redoLsn, nextXid, nextOid, running } satisfies CheckpointImage);
    });
  }
}

export const SHMEM = defineBehaviour(import.meta.url, 'Shmem', () => new Shmem());
