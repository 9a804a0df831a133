/*
 * as-postgres.ts — running PostgreSQL 15's programs as the `postgres` user.
 *
 * PostgreSQL refuses to run as root, so when we are root every program runs through
 * `runuser -u postgres -- env NAME=value ... program args` in directories handed to postgres
 * (chown); as any other user the programs run as that user directly. findPostgres() checks
 * up front that everything needed is there and says what is missing; run() rejects with the
 * program's own error text when it exits non-zero, and kills it past its time limit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';

export const POSTGRES_BIN_DIR = '/usr/lib/postgresql/15/bin';
const PROGRAMS = ['initdb', 'pg_ctl', 'pg_basebackup', 'pgbench', 'psql'] as const;
export type PostgresProgram = (typeof PROGRAMS)[number];

/** PostgreSQL cannot be run here; the message says why and what to install. */
export class PostgresUnavailable extends Error {}

export interface PostgresRunner {
  /** Runs a program and resolves with its output; rejects with its stderr on failure. */
  run(program: PostgresProgram, args: readonly string[], options?: RunOptions): Promise<ProgramOutput>;
  /** A new directory that postgres owns, under `parent` (mkdtemp) or at `path` (mkdir). */
  makeDir(where: { parent: string; prefix: string } | { path: string }): string;
  /**
   * Waits for every program still running to end: a server start (detached) runs to its
   * end, so that its server can be stopped; anything else is sent SIGTERM first.
   */
  endAll(): Promise<void>;
}

export interface RunOptions {
  readonly env?: Readonly<Record<string, string>>;
  /** Kill the program after this long (it has its own limits; this one is a backstop). */
  readonly timeoutMs?: number;
  /** In a session of its own, so that Ctrl-C on the terminal does not reach it (servers). */
  readonly detached?: boolean;
}

export interface ProgramOutput {
  readonly stdout: string;
  readonly stderr: string;
}

const DEFAULT_TIMEOUT_MS = 120_000;
/** How long endAll() waits after SIGTERM before SIGKILL. */
const TERM_GRACE_MS = 10_000;

interface Running {
  readonly child: ChildProcess;
  readonly detached: boolean;
  readonly ended: Promise<void>;
}

function idOf(flag: '-u' | '-g'): number | null {
  const result = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  return result.status === 0 ? Number(result.stdout.trim()) : null;
}

/** Checks that PostgreSQL 15 can run here, and returns how to run it. */
export function findPostgres(binDir: string = POSTGRES_BIN_DIR): PostgresRunner {
  const missing = PROGRAMS.map((program) => join(binDir, program)).filter((path) => {
    try {
      accessSync(path, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new PostgresUnavailable(`--compare-postgres needs PostgreSQL 15's programs, and these are missing: ${missing.join(', ')} ` +
      '(on Debian or Ubuntu: apt-get install postgresql-15)');
  }
  const asRoot = process.getuid?.() === 0;
  let owner: { uid: number; gid: number } | null = null;
  if (asRoot) {
    const uid = idOf('-u');
    const gid = idOf('-g');
    if (uid === null || gid === null) throw new PostgresUnavailable('--compare-postgres runs PostgreSQL as the "postgres" user, and there is no such user here');
    if (spawnSync('runuser', ['--help']).error !== undefined) throw new PostgresUnavailable('--compare-postgres runs PostgreSQL through runuser (util-linux), which is not installed');
    owner = { uid, gid };
  }
  const running = new Set<Running>();
  return {
    run: (program, args, options = {}) => runProgram(join(binDir, program), args, asRoot, options, running),
    makeDir: (where) => {
      const path = 'parent' in where ? mkdtempSync(join(where.parent, where.prefix)) : where.path;
      if (!('parent' in where)) mkdirSync(path, { recursive: false });
      if (owner !== null) chownSync(path, owner.uid, owner.gid);
      return path;
    },
    endAll: async () => {
      await Promise.all([...running].map(async ({ child, detached, ended }) => {
        if (!detached) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), detached ? DEFAULT_TIMEOUT_MS : TERM_GRACE_MS);
        await ended;
        clearTimeout(timer);
      }));
    },
  };
}

function runProgram(path: string, args: readonly string[], asRoot: boolean, options: RunOptions, running: Set<Running>): Promise<ProgramOutput> {
  const env = Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`);
  const [command, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', 'env', ...env, path, ...args]] : [path, [...args]];
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.detached ?? false,
      env: asRoot ? process.env : { ...process.env, ...options.env },
    });
    const entry: Running = { child, detached: options.detached ?? false, ended: new Promise((ended) => child.once('close', () => ended())) };
    running.add(entry);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      running.delete(entry);
      reject(new Error(`could not run ${path}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(entry);
      if (code === 0) resolve({ stdout, stderr });
      else {
        const why = signal === null ? `exit code ${code}` : `signal ${signal}${signal === 'SIGKILL' ? ` (over its ${timeoutMs / 1000} s limit?)` : ''}`;
        reject(new Error(`${path} ${args.join(' ')} failed (${why}): ${stderr.trim() || stdout.trim()}`));
      }
    });
  });
}
