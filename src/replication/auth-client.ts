/*
 * auth-client.ts — the client's half of a replication connection's authentication, shared
 * by the walreceiver and pg_basebackup: answer the method the server asks for with the
 * password from the connection string, and check the server's SCRAM signature at the end.
 */
import { PgError, SqlState } from '../errors.js';
import type { AuthOk, AuthRequest, PasswordMessage, ScramClientFinal, ScramClientFirst, ScramServerFirst } from './protocol.js';
import { ScramClient } from './scram.js';

export class AuthClient {
  private scram: ScramClient | null = null;

  constructor(private readonly user: string, private readonly password: string | undefined, private readonly nonce: () => string) {}

  /** The first answer to the server's AuthRequest (libpq's error if a password is needed and there is none). */
  answer(request: AuthRequest): PasswordMessage | ScramClientFirst {
    if (this.password === undefined) {
      throw new PgError({ code: SqlState.InvalidPassword, severity: 'FATAL', message: 'fe_sendauth: no password supplied' });
    }
    if (request.method === 'password') return { type: 'PasswordMessage', password: this.password };
    this.scram = new ScramClient(this.user, this.password, this.nonce());
    return { type: 'ScramClientFirst', data: this.scram.firstMessage() };
  }

  proof(serverFirst: ScramServerFirst): ScramClientFinal {
    if (this.scram === null) throw new PgError({ code: SqlState.ProtocolViolation, severity: 'FATAL', message: 'unexpected SCRAM message from the server' });
    return { type: 'ScramClientFinal', data: this.scram.finalMessage(serverFirst.data) };
  }

  /** Authentication is over: a SCRAM server must prove it knew the password too. */
  done(ok: AuthOk): void {
    if (ok.serverFinal !== null) this.scram?.verifyServer(ok.serverFinal);
  }
}
