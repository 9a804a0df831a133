/*
 * SCRAM-SHA-256: the RFC 7677 test vector, a full exchange, and a wrong password refused
 * with PostgreSQL's text.
 */
import { expect } from 'chai';
import { PgError } from '../../src/errors.js';
import { ScramClient, ScramServer, scramVerifier } from '../../src/replication/scram.js';

describe('SCRAM-SHA-256', () => {
  it('reproduces the RFC 7677 example exchange', () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const client = new ScramClient('user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    const server = new ScramServer('user', scramVerifier('pencil', salt, 4096), '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0');
    expect(client.firstMessage()).to.equal('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const serverFirst = server.handleFirst(client.firstMessage());
    expect(serverFirst).to.equal('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    const clientFinal = client.finalMessage(serverFirst);
    expect(clientFinal).to.equal('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    const serverFinal = server.handleFinal(clientFinal);
    expect(serverFinal).to.equal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    expect(() => client.verifyServer(serverFinal)).to.not.throw();
  });

  it('stores verifiers in PostgreSQL\'s format', () => {
    expect(scramVerifier('secret', Buffer.alloc(16, 1))).to.match(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
  });

  it('refuses a wrong password, and a client refuses a server that does not know it', () => {
    const verifier = scramVerifier('right', Buffer.alloc(16, 7));
    const client = new ScramClient('repl', 'wrong', 'clientnonce');
    const server = new ScramServer('repl', verifier, 'servernonce');
    const final = client.finalMessage(server.handleFirst(client.firstMessage()));
    let error: unknown;
    try {
      server.handleFinal(final);
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(PgError);
    expect([(error as PgError).code, (error as PgError).message]).to.deep.equal(['28P01', 'password authentication failed for user "repl"']);
    const honest = new ScramClient('repl', 'right', 'n1');
    const impostor = new ScramServer('repl', scramVerifier('other', Buffer.alloc(16, 7)), 'n2');
    const proof = honest.finalMessage(impostor.handleFirst(honest.firstMessage()));
    expect(() => impostor.handleFinal(proof)).to.throw('password authentication failed');
    expect(() => honest.verifyServer('v=AAAA')).to.throw('invalid SCRAM server signature');
  });
});
