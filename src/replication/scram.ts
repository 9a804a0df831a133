/*
 * scram.ts — SCRAM-SHA-256 (RFC 5802, RFC 7677), as PostgreSQL authenticates passwords.
 *
 * A role's password is stored only as a verifier, in PostgreSQL's format:
 *   SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
 * The exchange is four messages: client-first (`n,,n=,r=<nonce>`), server-first (combined
 * nonce, salt, iterations), client-final (channel binding `biws`, nonce, proof), server-final
 * (the server's signature, which the client checks). Both sides are plain objects with no
 * I/O; nonces are passed in so that actors can draw them from their context (seeded under
 * simulation). A wrong password fails with PostgreSQL's 28P01 text. Passwords are used as
 * given (no SASLprep normalisation).
 */
import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { PgError } from '../errors.js';

export const SCRAM_ITERATIONS = 4096;
const GS2_HEADER = 'n,,';

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
const xor = (a: Buffer, b: Buffer): Buffer => Buffer.from(a.map((byte, i) => byte ^ b[i]!));

function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(password, salt, iterations, 32, 'sha256');
}

/** The verifier stored for `password` (what CREATE ROLE ... PASSWORD keeps). */
export function scramVerifier(password: string, salt: Buffer, iterations = SCRAM_ITERATIONS): string {
  const salted = saltedPassword(password, salt, iterations);
  const storedKey = sha256(hmac(salted, 'Client Key'));
  const serverKey = hmac(salted, 'Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

interface Verifier {
  readonly iterations: number;
  readonly salt: string;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

function parseVerifier(text: string): Verifier {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(text);
  if (match === null) throw new Error('not a SCRAM-SHA-256 verifier');
  return { iterations: Number(match[1]), salt: match[2]!, storedKey: Buffer.from(match[3]!, 'base64'), serverKey: Buffer.from(match[4]!, 'base64') };
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

function malformed(what: string): PgError {
  return new PgError({ code: '08P01', severity: 'FATAL', message: `malformed SCRAM message (${what})` });
}

export class ScramClient {
  private clientFirstBare = '';
  private authMessage = '';
  private serverKey: Buffer | null = null;

  constructor(private readonly user: string, private readonly password: string, private readonly nonce: string) {}

  firstMessage(): string {
    this.clientFirstBare = `n=${this.user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${this.nonce}`;
    return GS2_HEADER + this.clientFirstBare;
  }

  finalMessage(serverFirst: string): string {
    const attrs = attributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (nonce === undefined || !nonce.startsWith(this.nonce) || salt === undefined || !Number.isInteger(iterations) || iterations < 1) {
      throw malformed('server-first-message');
    }
    const salted = saltedPassword(this.password, Buffer.from(salt, 'base64'), iterations);
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = sha256(clientKey);
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    this.authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    this.serverKey = hmac(salted, 'Server Key');
    const proof = xor(clientKey, hmac(storedKey, this.authMessage));
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server knew the password too (a server that did not is an impostor). */
  verifyServer(serverFinal: string): void {
    const signature = Buffer.from(attributes(serverFinal).get('v') ?? '', 'base64');
    const expected = hmac(this.serverKey!, this.authMessage);
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      throw new PgError({ code: '28000', severity: 'FATAL', message: 'invalid SCRAM server signature' });
    }
  }
}

export class ScramServer {
  private readonly verifier: Verifier;
  private clientFirstBare = '';
  private serverFirst = '';
  private combinedNonce = '';

  constructor(private readonly role: string, verifier: string, private readonly nonce: string) {
    this.verifier = parseVerifier(verifier);
  }

  handleFirst(clientFirst: string): string {
    if (!clientFirst.startsWith(GS2_HEADER)) throw malformed('client-first-message: channel binding is not supported');
    this.clientFirstBare = clientFirst.slice(GS2_HEADER.length);
    const clientNonce = attributes(this.clientFirstBare).get('r');
    if (clientNonce === undefined || clientNonce === '') throw malformed('client-first-message');
    this.combinedNonce = clientNonce + this.nonce;
    this.serverFirst = `r=${this.combinedNonce},s=${this.verifier.salt},i=${this.verifier.iterations}`;
    return this.serverFirst;
  }

  /** Verifies the client's proof; returns server-final, or throws 28P01 for a wrong password. */
  handleFinal(clientFinal: string): string {
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt < 0) throw malformed('client-final-message');
    const withoutProof = clientFinal.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (attrs.get('r') !== this.combinedNonce) throw malformed('client-final-message: nonce mismatch');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
    const signature = hmac(this.verifier.storedKey, authMessage);
    if (proof.length !== signature.length || !timingSafeEqual(sha256(xor(proof, signature)), this.verifier.storedKey)) {
      throw new PgError({ code: '28P01', severity: 'FATAL', message: `password authentication failed for user "${this.role}"` });
    }
    return `v=${hmac(this.verifier.serverKey, authMessage).toString('base64')}`;
  }
}
