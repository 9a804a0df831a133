/*
 * basebackup.ts — pg_basebackup -R: a new standby's data directory, copied over a
 * replication connection while the upstream keeps running.
 *
 * It connects as the connection string says, authenticates, sends BASE_BACKUP and writes
 * each file it receives into the new data directory (the WAL needed to reach consistency
 * included), then configures the copy as a standby as `-R` does: `standby.signal`, and
 * primary_conninfo / primary_slot_name (plus any settings asked for) in
 * postgresql.auto.conf. Progress goes to `replyTo` as bytes copied of the total;
 * `BaseBackupDone` ends it, with the error if it failed.
 */
import { parseConfFile, renderAutoConf } from '../config/conffile.js';
import { parseConninfo } from '../config/conninfo.js';
import { PgError, SqlState, type PgErrorFields } from '../errors.js';
import { defineBehaviour, NORMAL, type Actor, type ActorRef, type Message } from '../runtime/actor.js';
import type { Context } from '../runtime/context.js';
import type { FileOp } from '../runtime/fileio.js';
import type { IoResult } from '../runtime/io.js';
import { AuthClient } from '../replication/auth-client.js';
import {
  LOOPBACK, type AuthOk, type AuthRequest, type BackupEnd, type BackupFile, type BackupStart, type BaseBackup, type ReplConnect, type ReplError,
  type Resolve, type Resolved, type ScramServerFirst,
} from '../replication/protocol.js';
import type { Lsn } from '../wal/lsn.js';

export interface BaseBackupArgs {
  readonly conninfo: string;
  readonly dataDir: string;
  readonly directory: ActorRef;
  readonly replyTo: ActorRef;
  /** Written into postgresql.auto.conf of the copy (primary_conninfo, primary_slot_name, ...). */
  readonly recoverySettings: Readonly<Record<string, string>>;
}

export interface BaseBackupProgress extends Message { readonly type: 'BaseBackupProgress'; readonly bytes: number; readonly totalBytes: number }
export type BaseBackupDone =
  | (Message & { readonly type: 'BaseBackupDone'; readonly ok: true; readonly startLsn: Lsn; readonly endLsn: Lsn })
  | (Message & { readonly type: 'BaseBackupDone'; readonly ok: false; readonly error: PgErrorFields });

const DIRECTORIES = ['', 'global', 'pg_wal', 'pg_wal/archive_status', 'base', 'log', 'pg_replslot'];

class BaseBackupClient implements Actor {
  private walsender: ActorRef | null = null;
  private auth: AuthClient | null = null;
  private readonly writes: FileOp[] = [];
  private writing = false;
  private bytes = 0;
  private totalBytes = 0;
  private startLsn: Lsn = 0;
  private endLsn: Lsn | null = null;
  private autoConf = '';
  private finished = false;

  constructor(private readonly args: BaseBackupArgs) {}

  start(ctx: Context): void {
    const info = parseConninfo(this.args.conninfo);
    ctx.send(this.args.directory, { type: 'Resolve', host: info.host ?? 'localhost', port: Number(info.port ?? '5432'), replyTo: ctx.self } satisfies Resolve);
  }

  receive(msg: Message, ctx: Context): void {
    try {
      this.handle(msg, ctx);
    } catch (err) {
      if (!(err instanceof PgError)) throw err;
      this.fail(err.toFields(), ctx);
    }
  }

  private handle(msg: Message, ctx: Context): void {
    const info = parseConninfo(this.args.conninfo);
    switch (msg.type) {
      case 'Resolved': {
        const postmaster = (msg as Resolved).postmaster;
        if (postmaster === null) {
          throw new PgError({
            code: SqlState.UnableToConnect, severity: 'FATAL',
            message: `connection to server at "${info.host ?? 'localhost'}", port ${info.port ?? '5432'} failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?`,
          });
        }
        ctx.send(postmaster, { type: 'ReplConnect', connection: 1, user: info.user ?? 'postgres', applicationName: 'pg_basebackup', address: LOOPBACK, replyTo: ctx.self } satisfies ReplConnect);
        return;
      }
      case 'AuthRequest': {
        const request = msg as AuthRequest;
        this.walsender = request.walsender;
        this.auth = new AuthClient(info.user ?? 'postgres', info.password, () => ctx.newId());
        ctx.send(request.walsender, this.auth.answer(request));
        return;
      }
      case 'ScramServerFirst':
        ctx.send(this.walsender!, this.auth!.proof(msg as ScramServerFirst));
        return;
      case 'AuthOk':
        this.auth?.done(msg as AuthOk);
        this.walsender = (msg as AuthOk).walsender;
        ctx.send(this.walsender, { type: 'BaseBackup', label: 'pg_basebackup base backup' } satisfies BaseBackup);
        return;
      case 'ReplError':
        return this.fail((msg as ReplError).error, ctx);
      case 'BackupStart': {
        const start = msg as BackupStart;
        this.startLsn = start.startLsn;
        this.totalBytes = start.totalBytes;
        for (const dir of DIRECTORIES) this.queue({ kind: 'file.mkdir', path: dir === '' ? this.args.dataDir : `${this.args.dataDir}/${dir}` }, ctx);
        this.progress(ctx);
        return;
      }
      case 'BackupFile': {
        const file = msg as BackupFile;
        if (file.path === 'postgresql.auto.conf') {
          this.autoConf = new TextDecoder().decode(file.bytes);
          return;
        }
        this.queue({ kind: 'file.writeAtomic', path: `${this.args.dataDir}/${file.path}`, bytes: file.bytes }, ctx);
        this.bytes += file.bytes.length;
        this.progress(ctx);
        return;
      }
      case 'BackupEnd':
        this.endLsn = (msg as BackupEnd).endLsn;
        // As pg_basebackup -R: the copy starts as a standby of the server it came from.
        this.queue({ kind: 'file.writeAtomic', path: `${this.args.dataDir}/postgresql.auto.conf`, bytes: new TextEncoder().encode(this.recoveryConf()) }, ctx);
        this.queue({ kind: 'file.writeAtomic', path: `${this.args.dataDir}/standby.signal`, bytes: new Uint8Array(0) }, ctx);
        if (this.walsender !== null) ctx.send(this.walsender, { type: 'ReplDisconnect' });
        return this.maybeDone(ctx);
      case 'Written': {
        const io = msg as IoResult;
        if (!io.ok) throw new PgError({ code: SqlState.InternalError, severity: 'FATAL', message: `could not write to the new data directory: ${io.error.message}` });
        this.writing = false;
        this.writes.shift();
        this.writeNext(ctx);
        return this.maybeDone(ctx);
      }
    }
  }

  private recoveryConf(): string {
    const entries = new Map<string, string>();
    for (const e of parseConfFile(this.autoConf, 'postgresql.auto.conf')) entries.set(e.name, e.value);
    for (const [name, value] of Object.entries(this.args.recoverySettings)) entries.set(name, value);
    return renderAutoConf(entries);
  }

  private queue(op: FileOp, ctx: Context): void {
    this.writes.push(op);
    this.writeNext(ctx);
  }

  private writeNext(ctx: Context): void {
    if (this.writing || this.writes.length === 0) return;
    this.writing = true;
    ctx.io(this.writes[0]!, 'Written');
  }

  private progress(ctx: Context): void {
    ctx.send(this.args.replyTo, { type: 'BaseBackupProgress', bytes: this.bytes, totalBytes: Math.max(this.totalBytes, this.bytes) } satisfies BaseBackupProgress);
  }

  private maybeDone(ctx: Context): void {
    if (this.finished || this.endLsn === null || this.writes.length > 0) return;
    this.finished = true;
    ctx.send(this.args.replyTo, { type: 'BaseBackupDone', ok: true, startLsn: this.startLsn, endLsn: this.endLsn } satisfies BaseBackupDone);
    ctx.stop(ctx.self, NORMAL);
  }

  private fail(error: PgErrorFields, ctx: Context): void {
    if (this.finished) return;
    this.finished = true;
    if (this.walsender !== null) ctx.send(this.walsender, { type: 'ReplDisconnect' });
    ctx.send(this.args.replyTo, { type: 'BaseBackupDone', ok: false, error } satisfies BaseBackupDone);
    ctx.stop(ctx.self, NORMAL);
  }
}

export const BASEBACKUP = defineBehaviour(import.meta.url, 'BaseBackup', (args: BaseBackupArgs) => new BaseBackupClient(args));
