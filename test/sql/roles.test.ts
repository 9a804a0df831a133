/*
 * Roles as PostgreSQL's pg_authid: CREATE ROLE / USER, ALTER ROLE, DROP ROLE, passwords as
 * SCRAM-SHA-256 verifiers, pg_roles, MVCC like any catalog, and WAL that carries roles to
 * standbys and through crash recovery.
 */
import { expect } from 'chai';
import { PgError } from '../../src/errors.js';
import { ScramClient, ScramServer, scramVerifier } from '../../src/replication/scram.js';
import { Engine } from '../../src/sql/engine.js';
import { describeRecord } from '../../src/storage/redo.js';
import { DatabaseState } from '../../src/storage/state.js';
import { Harness, seen } from './harness.js';

/** Does `password` authenticate `user` against `verifier` (a whole SCRAM exchange)? */
function authenticates(user: string, password: string, verifier: string): boolean {
  const client = new ScramClient(user, password, 'client-nonce');
  const server = new ScramServer(user, verifier, 'server-nonce');
  const serverFirst = server.handleFirst(client.firstMessage());
  try {
    client.verifyServer(server.handleFinal(client.finalMessage(serverFirst)));
    return true;
  } catch (err) {
    if (err instanceof PgError && err.code === '28P01') return false;
    throw err;
  }
}

describe('roles', () => {
  let h: Harness;
  beforeEach(() => {
    h = new Harness();
  });

  it('starts with initdb\'s superuser postgres, listed in pg_roles', () => {
    expect(h.engine.role('postgres')).to.deep.equal({ name: 'postgres', superuser: true, login: true, replication: true, verifier: null });
    expect(h.rows('a', 'SELECT * FROM pg_roles')).to.deep.equal([{ rolname: 'postgres', rolsuper: true, rolreplication: true, rolcanlogin: true }]);
    expect(h.engine.role('nobody')).to.equal(undefined);
  });

  it('creates roles and users with PostgreSQL\'s defaults, and pg_roles answers like a table', () => {
    expect(h.ok('a', 'CREATE ROLE app').command).to.equal('CREATE ROLE');
    expect(h.ok('a', 'CREATE USER alice').command).to.equal('CREATE ROLE');
    h.ok('a', 'CREATE ROLE repl WITH REPLICATION LOGIN');
    h.ok('a', 'CREATE ROLE admin SUPERUSER NOLOGIN');
    expect(h.engine.role('app')).to.deep.equal({ name: 'app', superuser: false, login: false, replication: false, verifier: null });
    expect(h.engine.role('alice')?.login).to.equal(true);
    expect(h.rows('a', 'SELECT rolname, rolcanlogin FROM pg_roles WHERE rolreplication ORDER BY rolname DESC')).to.deep.equal([
      { rolname: 'repl', rolcanlogin: true }, { rolname: 'postgres', rolcanlogin: true },
    ]);
    expect(h.rows('a', 'SELECT count(*) FROM pg_catalog.pg_roles WHERE NOT rolcanlogin')).to.deep.equal([{ count: 2 }]);
    expect(h.rows('a', 'SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY 1')).to.deep.equal([{ rolname: 'admin' }, { rolname: 'postgres' }]);
  });

  it('keeps passwords as SCRAM-SHA-256 verifiers salted from the random source, and takes verifiers as they are', () => {
    h.options = { random: () => 0.25 };
    h.ok('a', "CREATE ROLE repl WITH REPLICATION LOGIN PASSWORD 'secret'");
    const verifier = h.engine.role('repl')!.verifier!;
    expect(verifier).to.equal(scramVerifier('secret', Buffer.alloc(16, 64)));
    expect(authenticates('repl', 'secret', verifier)).to.equal(true);
    expect(authenticates('repl', 'wrong', verifier)).to.equal(false);
    h.options = { random: () => 0.75 };
    h.ok('a', "CREATE USER other PASSWORD 'secret'");
    expect(h.engine.role('other')!.verifier, 'another salt').to.not.equal(verifier);
    h.options = {};
    h.ok('a', "CREATE USER unsalted PASSWORD 'secret'");
    expect(authenticates('unsalted', 'secret', h.engine.role('unsalted')!.verifier!), 'node:crypto salt').to.equal(true);

    const given = scramVerifier('pw', Buffer.from('0123456789abcdef'));
    h.ok('a', `CREATE USER copied PASSWORD '${given}'`);
    expect(h.engine.role('copied')!.verifier).to.equal(given);
    h.ok('a', 'ALTER ROLE copied PASSWORD NULL');
    expect(h.engine.role('copied')!.verifier).to.equal(null);
    h.ok('a', "ALTER USER copied WITH PASSWORD 'new'");
    expect(authenticates('copied', 'new', h.engine.role('copied')!.verifier!)).to.equal(true);
    h.ok('a', "ALTER ROLE copied PASSWORD ''");
    expect(h.engine.role('copied')!.verifier, 'an empty password clears it').to.equal(null);
  });

  it('alters only the attributes named, and drops roles', () => {
    h.ok('a', "CREATE USER bob PASSWORD 'pw'");
    const verifier = h.engine.role('bob')!.verifier;
    expect(h.ok('a', 'ALTER ROLE bob WITH NOLOGIN REPLICATION').command).to.equal('ALTER ROLE');
    expect(h.engine.role('bob')).to.deep.equal({ name: 'bob', superuser: false, login: false, replication: true, verifier });
    h.ok('a', 'CREATE ROLE carol');
    expect(h.ok('a', 'DROP ROLE bob, carol').command).to.equal('DROP ROLE');
    expect([h.engine.role('bob'), h.engine.role('carol')]).to.deep.equal([undefined, undefined]);
    expect(h.ok('a', 'DROP ROLE IF EXISTS bob').command).to.equal('DROP ROLE');
    h.ok('a', 'CREATE ROLE bob');
    expect(h.engine.role('bob')?.login, 'a new role of an old name').to.equal(false);
  });

  it('fails as PostgreSQL does', () => {
    h.ok('a', 'CREATE ROLE app');
    const failures: [string, object][] = [
      ['CREATE ROLE app', { code: '42710', message: 'role "app" already exists' }],
      ['CREATE USER app', { code: '42710', message: 'role "app" already exists' }],
      ['ALTER ROLE ghost LOGIN', { code: '42704', message: 'role "ghost" does not exist' }],
      ['DROP ROLE ghost', { code: '42704', message: 'role "ghost" does not exist' }],
      ['DROP ROLE app, ghost', { code: '42704', message: 'role "ghost" does not exist' }],
      ['CREATE ROLE pg_monitor2', { code: '42939', message: 'role name "pg_monitor2" is reserved' }],
      ['CREATE ROLE x LOGIN NOLOGIN', { code: '42601', message: 'conflicting or redundant options' }],
      ['CREATE ROLE x CREATEDB', { code: '0A000', message: 'role attribute CREATEDB is not supported by walship' }],
      ['DROP ROLE postgres', { code: '2BP01', message: 'cannot drop role postgres because it is required by the database system' }],
      ['ALTER ROLE postgres NOSUPERUSER', { code: '42501', message: 'permission denied: bootstrap user must be superuser' }],
    ];
    for (const [sql, expected] of failures) expect(seen(h.error('a', sql)), sql).to.deep.equal(expected);
    expect(h.error('a', 'CREATE ROLE pg_x').detail).to.equal('Role names starting with "pg_" are reserved.');
    expect(h.engine.role('app'), 'the failed DROP of two roles dropped neither').to.not.equal(undefined);
    expect(h.engine.role('x')).to.equal(undefined);
  });

  it('follows MVCC: invisible to others until committed, gone on rollback, and a concurrent change waits', () => {
    h.ok('a', 'BEGIN');
    h.ok('a', 'CREATE ROLE pending LOGIN');
    expect(h.rows('a', "SELECT rolname FROM pg_roles WHERE rolname = 'pending'")).to.deep.equal([{ rolname: 'pending' }]);
    expect(h.rows('b', "SELECT rolname FROM pg_roles WHERE rolname = 'pending'")).to.deep.equal([]);
    expect(h.engine.role('pending')).to.equal(undefined);
    const racing = h.run('b', 'CREATE ROLE pending');
    expect(racing.kind, 'the same name waits for the creator').to.equal('wait');
    h.ok('a', 'ROLLBACK');
    expect(h.ok('b', 'CREATE ROLE pending').command).to.equal('CREATE ROLE');

    h.ok('a', 'BEGIN');
    h.ok('a', 'ALTER ROLE pending LOGIN');
    expect(h.engine.role('pending')?.login, 'authentication sees the committed version').to.equal(false);
    expect(h.run('b', 'DROP ROLE pending').kind, 'a role being altered is waited for').to.equal('wait');
    h.ok('a', 'COMMIT');
    expect(h.engine.role('pending')?.login).to.equal(true);
    h.ok('b', 'DROP ROLE pending');
    expect(h.engine.role('pending')).to.equal(undefined);
  });

  it('replicates through WAL and survives a checkpoint image', () => {
    h.options = { random: () => 0.5 };
    h.ok('a', "CREATE ROLE repl REPLICATION LOGIN PASSWORD 'secret'");
    h.ok('a', 'CREATE ROLE gone');
    h.ok('a', 'ALTER ROLE repl SUPERUSER');
    h.ok('a', 'DROP ROLE gone');
    expect(h.wal.filter((r) => describeRecord(r).startsWith('Authid/')).map(describeRecord)).to.deep.equal(['Authid/CREATE', 'Authid/CREATE', 'Authid/ALTER', 'Authid/DROP']);
    const standby = h.standby();
    expect(standby.engine.role('repl')).to.deep.equal(h.engine.role('repl'));
    expect(standby.engine.role('repl')?.superuser).to.equal(true);
    expect(standby.engine.role('gone')).to.equal(undefined);
    expect(standby.rows('s', 'SELECT rolname FROM pg_roles ORDER BY rolname')).to.deep.equal([{ rolname: 'postgres' }, { rolname: 'repl' }]);
    const restored = new Engine(DatabaseState.fromImage(structuredClone(h.engine.state.image())));
    expect(restored.role('repl')).to.deep.equal(h.engine.role('repl'));
    expect(restored.role('postgres')?.superuser).to.equal(true);
  });
});
