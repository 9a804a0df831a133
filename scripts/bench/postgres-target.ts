/*
 * postgres-target.ts — the same topology from PostgreSQL 15, for `--compare-postgres`.
 *
 * start(), all as the postgres user (as-postgres.ts), in a directory postgres owns:
 *   initdb -A trust; the primary on 127.0.0.1 and a free port, its unix socket in our
 *   directory; pg_ctl start; the bench table (and preload); then per standby sN
 *   pg_basebackup -R -X stream -c fast -C -S sN with application_name=sN in the conninfo
 *   (so -R writes it into primary_conninfo, and synchronous_standby_names can name it), its
 *   own port, pg_ctl start; then a wait until pg_stat_replication shows all streaming.
 * Each server's `pg_ctl stop -m immediate` joins the run's cleanup before its start, so a
 * start that fails halfway, an error later, or Ctrl-C still stops it. Runs are pgbench's
 * (pgbench.ts).
 */
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PostgresRunner } from './as-postgres.js';
import type { Cleanup } from './cleanup.js';
import { freePorts, LOOPBACK } from './free-ports.js';
import { sqlLiteral, standbyNamesOf, type Mix } from './options.js';
import { runPgbench } from './pgbench.js';
import type { BenchTarget, RunOutcome, RunRequest } from './target.js';
import { waitFor } from './wait.js';
import { setupStatements } from './workload.js';

const START_TIMEOUT_SECONDS = 60;
const RELOAD_TIMEOUT_MS = 10_000;
/** A unix socket path longer than this does not fit in sockaddr_un (108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

export interface PostgresTopology {
  /** Owned by postgres, empty. */
  readonly dir: string;
  readonly standbys: number;
  readonly mix: Mix;
}

export interface PostgresServer {
  readonly name: string;
  readonly dataDir: string;
  readonly port: number;
}

export class PostgresTarget implements BenchTarget {
  readonly system = 'postgresql';
  private runs = 0;

  private constructor(private readonly postgres: PostgresRunner, private readonly topology: PostgresTopology, private readonly primary: PostgresServer) {}

  static async start(postgres: PostgresRunner, topology: PostgresTopology, cleanup: Cleanup): Promise<PostgresTarget> {
    const socketDir = postgres.makeDir({ path: join(topology.dir, 'sock') });
    if (join(socketDir, '.s.PGSQL.65535').length > MAX_SOCKET_PATH) {
      throw new Error(`the unix socket directory ${socketDir} is too long a path for a socket: use a shorter --dir`);
    }
    const logDir = postgres.makeDir({ path: join(topology.dir, 'log') });
    const names = standbyNamesOf(topology.standbys);
    const [primaryPort, ...standbyPorts] = await freePorts(1 + names.length);
    const primary: PostgresServer = { name: 'primary', dataDir: join(topology.dir, 'primary'), port: primaryPort! };

    await postgres.run('initdb', ['-D', primary.dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-instructions']);
    appendFileSync(join(primary.dataDir, 'postgresql.conf'), [
      '', '# walship bench',
      `listen_addresses = '${LOOPBACK}'`,
      `port = ${primary.port}`,
      `unix_socket_directories = ${sqlLiteral(socketDir)}`,
      `max_wal_senders = ${names.length + 4}`,
      `max_replication_slots = ${names.length + 4}`,
      '',
    ].join('\n'));
    const target = new PostgresTarget(postgres, topology, primary);
    await target.startServer(primary, logDir, cleanup);
    for (const sql of setupStatements(topology.mix)) await target.psql(sql);

    for (const [i, name] of names.entries()) {
      const standby: PostgresServer = { name, dataDir: join(topology.dir, name), port: standbyPorts[i]! };
      await postgres.run('pg_basebackup', [
        '-D', standby.dataDir, '-R', '-X', 'stream', '-c', 'fast', '-C', '-S', name,
        '-d', `host=${LOOPBACK} port=${primary.port} user=postgres application_name=${name}`,
      ]);
      // The copied postgresql.conf names the primary's port; the later line wins.
      appendFileSync(join(standby.dataDir, 'postgresql.conf'), `port = ${standby.port}\n`);
      await target.startServer(standby, logDir, cleanup);
    }
    await waitFor(`${names.length} standbys streaming from the PostgreSQL primary`, async () =>
      Number(await target.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")) === names.length,
    START_TIMEOUT_SECONDS * 1000);
    return target;
  }

  /**
   * pg_ctl start, in a session of its own: Ctrl-C on the terminal reaches us, not the
   * server, and the cleanup stops it once its start has ended either way.
   */
  private async startServer(server: PostgresServer, logDir: string, cleanup: Cleanup): Promise<void> {
    const starting = this.postgres.run('pg_ctl', ['-D', server.dataDir, '-l', join(logDir, `${server.name}.log`), '-w', '-t', String(START_TIMEOUT_SECONDS), 'start'], {
      detached: true, timeoutMs: (START_TIMEOUT_SECONDS + 10) * 1000,
    });
    cleanup.add(`pg_ctl stop -m immediate (${server.name})`, async () => {
      await starting.catch(() => undefined);
      if (!existsSync(join(server.dataDir, 'postmaster.pid'))) return;
      await this.postgres.run('pg_ctl', ['-D', server.dataDir, '-m', 'immediate', '-w', 'stop']);
    });
    await starting;
  }

  /** One statement on the primary through psql; its output unaligned, tuples only. */
  private async psql(sql: string): Promise<string> {
    const output = await this.postgres.run('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', LOOPBACK, '-p', String(this.primary.port), '-U', 'postgres', '-d', 'postgres', '-c', sql]);
    return output.stdout.trim();
  }

  async setStandbyNames(value: string): Promise<void> {
    await this.psql(`ALTER SYSTEM SET synchronous_standby_names = ${sqlLiteral(value)}`);
    await this.psql('SELECT pg_reload_conf()');
    await waitFor(`synchronous_standby_names = '${value}' on the PostgreSQL primary`,
      async () => (await this.psql('SHOW synchronous_standby_names')) === value, RELOAD_TIMEOUT_MS);
  }

  run(request: RunRequest): Promise<RunOutcome> {
    const runDir = this.postgres.makeDir({ path: join(this.topology.dir, `pgbench-${++this.runs}`) });
    return runPgbench(this.postgres, { host: LOOPBACK, port: this.primary.port, dir: runDir, mix: this.topology.mix }, request);
  }
}
