/*
 * One server, as a DBA sees it: initdb and start, SQL through the public API, settings,
 * errors, checkpoints, clean and immediate shutdowns, crash recovery and its log lines, and
 * real kills under concurrent committing sessions, inline and in a worker thread.
 */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, PgError, type ServerPlacement } from '../../src/index.js';
import { log, pgError, until } from '../helpers.js';

const SEG = 1024 * 1024;

for (const placement of ['inline', 'thread'] as ServerPlacement[]) {
  describe(`a server (${placement} placement)`, function () {
    this.timeout(60_000);
    let dir: string;
    let cluster: Cluster;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'walship-server-'));
      cluster = await Cluster.create({ dir, placement });
    });
    afterEach(async () => {
      await cluster.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    it('starts, runs SQL and reports errors as PostgreSQL does', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      expect(log(primary)).to.contain('LOG:  database system is ready to accept connections');
      await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text, ok boolean)');
      const insert = await primary.query("INSERT INTO kv VALUES (1, 'a', true), (2, NULL, false) RETURNING id");
      expect(insert).to.deep.equal({ command: 'INSERT', rowCount: 2, columns: [{ name: 'id', type: 'int4' }], rows: [{ id: 1 }, { id: 2 }] });
      expect((await primary.query('SELECT * FROM kv ORDER BY id')).rows).to.deep.equal([{ id: 1, v: 'a', ok: true }, { id: 2, v: null, ok: false }]);
      const lsn = (await primary.query('SELECT pg_current_wal_lsn()')).rows[0]!['pg_current_wal_lsn'];
      expect(lsn).to.match(/^[0-9A-F]+\/[0-9A-F]+$/);
      const dup = await pgError(primary.query("INSERT INTO kv VALUES (1, 'x', true)"));
      expect([dup.code, dup.severity, dup.message, dup.detail]).to.deep.equal(['23505', 'ERROR', 'duplicate key value violates unique constraint "kv_pkey"', 'Key (id)=(1) already exists.']);
      const syntax = await pgError(primary.query('SELEC 1'));
      expect([syntax.code, syntax.message, syntax.position]).to.deep.equal(['42601', 'syntax error at or near "SELEC"', 1]);
    });

    it('gives each session its own settings and transactions', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG, settings: { wal_writer_delay: '20ms' } });
      await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
      const a = await primary.connect({ settings: { synchronous_commit: 'off' } });
      const b = await primary.connect();
      expect((await a.query('SHOW synchronous_commit')).rows).to.deep.equal([{ synchronous_commit: 'off' }]);
      expect((await b.query('SHOW synchronous_commit')).rows).to.deep.equal([{ synchronous_commit: 'on' }]);
      expect((await b.query('SHOW wal_writer_delay')).rows).to.deep.equal([{ wal_writer_delay: '20ms' }]);
      const reload = await pgError(b.query("SET wal_writer_delay = '5ms'"));
      expect([reload.code, reload.message]).to.deep.equal(['55P02', 'parameter "wal_writer_delay" cannot be changed now']);
      await a.query('BEGIN');
      await a.query("INSERT INTO kv VALUES (1, 'uncommitted')");
      expect((await b.query('SELECT count(*) FROM kv')).rows).to.deep.equal([{ count: 0 }]);
      await a.query('COMMIT');
      expect((await b.query('SELECT count(*) FROM kv')).rows).to.deep.equal([{ count: 1 }]);
      a.close();
      b.close();
    });

    it('recovers after a kill, logging as PostgreSQL does, and restarts cleanly after a fast stop', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
      for (let i = 0; i < 50; i++) await primary.query(`INSERT INTO kv VALUES (${i}, 'row ${i}')`);
      await primary.kill();
      await primary.start();
      expect((await primary.query('SELECT count(*) FROM kv')).rows).to.deep.equal([{ count: 50 }]);
      const text = log(primary);
      expect(text).to.match(/LOG: {2}database system was interrupted; last known up at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
      expect(text).to.contain('LOG:  database system was not properly shut down; automatic recovery in progress');
      expect(text).to.match(/LOG: {2}redo starts at [0-9A-F]+\/[0-9A-F]+/);
      expect(text).to.match(/LOG: {2}redo done at [0-9A-F]+\/[0-9A-F]+/);
      await primary.stop('fast');
      expect(log(primary)).to.contain('LOG:  database system is shut down');
      await primary.start();
      const last = log(primary).split('\n').filter((l) => l.includes('[startup]')).slice(-2);
      expect(last.join('\n')).to.match(/database system was shut down at/);
      expect(last.join('\n')).to.not.contain('redo starts');
      expect((await primary.query('SELECT count(*) FROM kv')).rows).to.deep.equal([{ count: 50 }]);
    });

    it('changes settings with ALTER SYSTEM and pg_reload_conf(), restart-only ones at restart', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      const show = async (name: string) => (await primary.query(`SHOW ${name}`)).rows[0]![name];
      expect((await primary.query("ALTER SYSTEM SET wal_writer_delay = '30ms'")).command).to.equal('ALTER SYSTEM');
      expect(await show('wal_writer_delay'), 'not before a reload').to.equal('200ms');
      expect((await primary.query('SELECT pg_reload_conf()')).rows).to.deep.equal([{ pg_reload_conf: true }]);
      expect(await show('wal_writer_delay')).to.equal('30ms');
      expect(readFileSync(join(primary.dataDir, 'postgresql.auto.conf'), 'utf8')).to.contain("wal_writer_delay = '30ms'");
      await primary.query('ALTER SYSTEM SET max_connections = 7');
      await primary.query('SELECT pg_reload_conf()');
      expect(await show('max_connections')).to.equal('100');
      const text = log(primary);
      expect(text).to.contain('LOG:  received SIGHUP, reloading configuration files');
      expect(text).to.contain('LOG:  parameter "wal_writer_delay" changed to "30ms"');
      expect(text).to.contain('LOG:  parameter "max_connections" cannot be changed without restarting the server');
      const bad = await pgError(primary.query("ALTER SYSTEM SET wal_writer_delay = 'soon'"));
      expect([bad.code, bad.message]).to.deep.equal(['22023', 'invalid value for parameter "wal_writer_delay": "soon"']);
      await primary.query('ALTER SYSTEM RESET wal_writer_delay');
      await primary.stop();
      await primary.start();
      expect(await show('max_connections')).to.equal('7');
      expect(await show('wal_writer_delay')).to.equal('200ms');
    });

    it('never repeats a sequence value after a crash', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      await primary.query('CREATE SEQUENCE ids');
      let last = 0;
      for (let i = 0; i < 40; i++) last = (await primary.query("SELECT nextval('ids') AS v")).rows[0]!['v'] as number;
      await primary.query('CHECKPOINT');
      for (let i = 0; i < 5; i++) last = (await primary.query("SELECT nextval('ids') AS v")).rows[0]!['v'] as number;
      await primary.query('CREATE TABLE t (id int)'); // a local commit flushes the sequence's WAL too
      expect(last).to.equal(45);
      await primary.kill();
      await primary.start();
      const next = (await primary.query("SELECT nextval('ids') AS v")).rows[0]!['v'] as number;
      expect(next).to.be.greaterThan(last);
    });

    it('recovers when a crash leaves a new checkpoint image but the old control file', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
      await primary.query("INSERT INTO kv VALUES (1, 'before')");
      await primary.query('CHECKPOINT');
      const oldControl = readFileSync(join(primary.dataDir, 'global', 'pg_control'));
      await primary.query("INSERT INTO kv VALUES (2, 'between')");
      await primary.query('CHECKPOINT');
      await primary.query("INSERT INTO kv VALUES (3, 'after')");
      await primary.kill();
      writeFileSync(join(primary.dataDir, 'global', 'pg_control'), oldControl); // the crash came before the control file
      await primary.start();
      expect((await primary.query('SELECT id FROM kv ORDER BY id')).rows).to.deep.equal([{ id: 1 }, { id: 2 }, { id: 3 }]);
    });

    it('does not run the statements of a session that went away', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      await primary.query('CREATE TABLE acct (id int PRIMARY KEY, bal int)');
      await primary.query('INSERT INTO acct VALUES (1, 100), (2, 100)');
      const a = await primary.connect();
      const b = await primary.connect();
      await a.query('BEGIN');
      await a.query('UPDATE acct SET bal = bal + 1 WHERE id = 1');
      await b.query('BEGIN');
      await b.query('UPDATE acct SET bal = bal + 50 WHERE id = 2');
      const blocked = b.query('UPDATE acct SET bal = bal - 50 WHERE id = 1').catch((e: PgError) => e.code);
      b.close();
      expect(await blocked).to.equal('08003');
      await a.query('COMMIT');
      expect((await primary.query('SELECT id, bal FROM acct ORDER BY id')).rows).to.deep.equal([{ id: 1, bal: 101 }, { id: 2, bal: 100 }]);
    });

    it('refuses to recover from WAL of another cluster, with a FATAL that says so', async () => {
      const a = await cluster.initPrimary('a', { walSegmentSize: SEG });
      const b = await cluster.initPrimary('b', { walSegmentSize: SEG });
      await a.query('CREATE TABLE kv (id int)');
      await b.query('CREATE TABLE kv (id int)');
      await a.kill();
      await b.kill();
      const name = readdirSync(join(a.dataDir, 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()[0]!;
      writeFileSync(join(a.dataDir, 'pg_wal', name), readFileSync(join(b.dataDir, 'pg_wal', name)));
      const failure = await a.start().then(() => 'started', (err: Error) => err.message);
      expect(failure).to.match(/^server "a" failed to start: .*WAL file is from different database system: WAL file database system identifier is \d+, pg_control database system identifier is \d+/);
      expect(log(a)).to.match(/FATAL: {2}WAL file is from different database system/);
    });

    it('creates and drops databases and tablespaces, durably', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      expect((await primary.query('CREATE DATABASE app')).command).to.equal('CREATE DATABASE');
      const dup = await pgError(primary.query('CREATE DATABASE app'));
      expect([dup.code, dup.message]).to.deep.equal(['42P04', 'database "app" already exists']);
      await primary.query("CREATE TABLESPACE fast LOCATION '/mnt/fast'");
      const app = await primary.connect({ database: 'app' });
      await app.query('CREATE TABLE kv (id int) TABLESPACE fast');
      await app.query('INSERT INTO kv VALUES (1)');
      expect((await pgError(primary.query('SELECT * FROM kv'))).message).to.equal('relation "kv" does not exist');
      const busy = await pgError(primary.query('DROP TABLESPACE fast'));
      expect([busy.code, busy.message]).to.deep.equal(['55000', 'tablespace "fast" is not empty']);
      await primary.query('BEGIN');
      const inBlock = await pgError(primary.query('CREATE DATABASE other'));
      expect([inBlock.code, inBlock.message]).to.deep.equal(['25001', 'CREATE DATABASE cannot run inside a transaction block']);
      await primary.query('ROLLBACK');
      await primary.kill();
      await primary.start();
      const again = await primary.connect({ database: 'app' });
      expect((await again.query('SELECT id FROM kv')).rows).to.deep.equal([{ id: 1 }]);
      again.close();
      await primary.query('DROP DATABASE app');
      const gone = await primary.connect({ database: 'app' });
      const missing = await pgError(gone.query('SELECT 1'));
      expect([missing.code, missing.severity, missing.message]).to.deep.equal(['3D000', 'FATAL', 'database "app" does not exist']);
    });

    it('waits for sessions to end in a smart shutdown, refusing new ones', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      await primary.query('CREATE TABLE kv (id int)');
      const open = await primary.connect();
      await open.query('BEGIN');
      await open.query('INSERT INTO kv VALUES (1)');
      let stopped = false;
      const stopping = primary.stop('smart').then(() => { stopped = true; });
      await until(() => log(primary).includes('received smart shutdown request'), 'the smart shutdown to begin');
      const refused = await pgError(primary.connect());
      expect([refused.code, refused.message]).to.deep.equal(['57P03', 'the database system is shutting down']);
      await open.query('COMMIT');
      expect(stopped).to.equal(false);
      open.close();
      await stopping;
      expect(log(primary)).to.contain('LOG:  database system is shut down');
      await primary.start();
      expect((await primary.query('SELECT id FROM kv')).rows).to.deep.equal([{ id: 1 }]);
    });

    it('treats transactions open at a crash as aborted', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
      await primary.query("INSERT INTO kv VALUES (1, 'kept'), (2, 'kept')");
      const open = await primary.connect();
      await open.query('BEGIN');
      await open.query("UPDATE kv SET v = 'never committed' WHERE id = 1");
      await open.query("INSERT INTO kv VALUES (3, 'never committed')");
      await open.query('DELETE FROM kv WHERE id = 2');
      await primary.query('CHECKPOINT'); // the image holds the open transaction's changes
      await primary.kill();
      await primary.start();
      expect((await primary.query('SELECT id, v FROM kv ORDER BY id')).rows).to.deep.equal([{ id: 1, v: 'kept' }, { id: 2, v: 'kept' }]);
      expect((await primary.query("UPDATE kv SET v = 'updated' WHERE id IN (1, 2)")).rowCount).to.equal(2);
      expect((await primary.query("INSERT INTO kv VALUES (3, 'new')")).rowCount).to.equal(1);
    });

    it('keeps every acknowledged commit of concurrent sessions through a kill', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
      const sessions = await Promise.all([0, 1, 2, 3].map(() => primary.connect()));
      const acked: number[] = [];
      let stop = false;
      const writers = sessions.map(async (session, client) => {
        for (let i = 0; !stop; i++) {
          const id = client * 1_000_000 + i;
          try {
            await session.query(`INSERT INTO kv VALUES (${id}, 'c${client}')`);
          } catch {
            return;
          }
          acked.push(id);
        }
      });
      while (acked.length < 400) await new Promise((resolve) => setImmediate(resolve));
      await primary.kill();
      stop = true;
      await Promise.allSettled(writers);
      const ackedAtKill = [...acked];
      await primary.start();
      const present = new Set((await primary.query('SELECT id FROM kv')).rows.map((r) => r['id'] as number));
      expect(ackedAtKill.filter((id) => !present.has(id))).to.deep.equal([]);
      expect(present.size).to.be.at.least(ackedAtKill.length);
    });

    it('removes WAL segments older than the checkpoint\'s redo point', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
      const filler = 'x'.repeat(2000);
      for (let i = 0; i < 1200; i++) await primary.query(`INSERT INTO kv VALUES (${i}, '${filler}')`);
      const segments = () => readdirSync(join(primary.dataDir, 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
      const before = segments();
      expect(before.length).to.be.greaterThan(2);
      await primary.query('CHECKPOINT');
      const after = segments();
      expect(after.length).to.be.lessThan(before.length);
      expect(after[0]! > before[0]!).to.equal(true);
      await primary.kill();
      await primary.start();
      expect((await primary.query('SELECT count(*) FROM kv')).rows).to.deep.equal([{ count: 1200 }]);
    });

    it('checkpoints by itself when max_wal_size fills', async () => {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG, settings: { max_wal_size: '2MB' } });
      await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
      const filler = 'y'.repeat(2000);
      for (let i = 0; i < 2500; i++) await primary.query(`INSERT INTO kv VALUES (${i}, '${filler}')`);
      const deadline = Date.now() + 10_000;
      while (!log(primary).includes('checkpoint starting: wal') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(log(primary)).to.contain('LOG:  checkpoint starting: wal');
      const segments = readdirSync(join(primary.dataDir, 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n));
      expect(segments.length, 'old segments were removed').to.be.lessThan(6);
    });
  });
}

describe('a server in the process placement', function () {
  this.timeout(60_000);

  it('survives kill -9 of its process with every acknowledged commit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'walship-process-'));
    const cluster = await Cluster.create({ dir, placement: 'process' });
    try {
      const primary = await cluster.initPrimary('primary', { walSegmentSize: SEG });
      await primary.query('CREATE TABLE kv (id int PRIMARY KEY, v text)');
      const acked: number[] = [];
      for (let i = 0; i < 200; i++) {
        await primary.query(`INSERT INTO kv VALUES (${i}, 'p')`);
        acked.push(i);
      }
      const pid = await primary.pid();
      expect(pid).to.be.a('number').and.not.equal(process.pid);
      process.kill(pid!, 'SIGKILL');
      // The supervisor sees the process die and restarts the server, which recovers.
      const deadline = Date.now() + 20_000;
      let rows: number | null = null;
      while (rows === null && Date.now() < deadline) {
        rows = await primary.query('SELECT count(*) FROM kv').then((r) => r.rows[0]!['count'] as number, () => null);
        if (rows === null) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(rows).to.equal(acked.length);
      expect(log(primary)).to.contain('database system was not properly shut down; automatic recovery in progress');
    } finally {
      await cluster.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
