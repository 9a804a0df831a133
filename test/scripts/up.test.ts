/*
 * `walship up`, driven as a user would from a terminal: a topology file in, the servers'
 * state out, everything stopped; a malformed file refused with the position and a fix.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processAlive } from '../../scripts/control.js';

const CLI = fileURLToPath(new URL('../../scripts/walship.js', import.meta.url));

function walship(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 90_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

describe('walship up', function () {
  this.timeout(120_000);

  it('starts examples/cascade.yaml, shows every standby streaming, and stops', async () => {
    const { code, stdout } = await walship(['up', 'examples/cascade.yaml', '--once']);
    expect(code, stdout).to.equal(0);
    for (const name of ['s1', 's2', 's3']) expect(stdout).to.match(new RegExp(`^${name}\\s+standby\\s+\\S+\\s+streaming`, 'm'));
    expect(stdout).to.match(/^primary\s+primary/m);
    expect(stdout.trimEnd().endsWith('stopped')).to.equal(true);
  });

  it('refuses a malformed file with exit status 2, the position and a fix, starting nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'walship-up-test-'));
    try {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, 'servers:\n  primary: {}\n  s1: { upstream: s2 }\n  s2: { upstream: s1 }\n');
      const { code, stdout, stderr } = await walship(['up', file, '--once']);
      expect(code).to.equal(2);
      expect(stdout).to.equal('');
      expect(stderr).to.include(`walship up: ${file}:3:`);
      expect(stderr).to.include('a cycle of upstreams: s1 -> s2 -> s1');
      expect(stderr).to.include('fix: every chain of upstreams must end at the primary');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('up --detach, then status, sql, promote, logs and stop, as from a terminal; nothing left running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'walship-cli-'));
    const state = join(dir, 'state.json');
    const data = join(dir, 'data');
    try {
      const up = await walship(['up', 'examples/sync-first.yaml', '--detach', '--state', state, '--dir', data]);
      expect(up.code, up.stderr).to.equal(0);
      expect(up.stdout).to.include('runs in the background');
      const pid = (JSON.parse(readFileSync(state, 'utf8')) as { pid: number }).pid;

      const status = await walship(['status', '--state', state]);
      expect(status.code).to.equal(0);
      expect(status.stdout).to.match(/^s1\s+standby\s+\S+\s+streaming\s+port \d+\s+sync/m);
      expect(status.stdout).to.match(/^s2\s+standby\s+\S+\s+streaming\s+port \d+\s+potential/m);

      expect((await walship(['sql', 'primary', 'CREATE TABLE t (x int)', '--state', state])).stdout).to.equal('CREATE TABLE\n');
      expect((await walship(['sql', 'primary', 'INSERT INTO t VALUES (1), (2)', '--state', state])).stdout).to.equal('INSERT 0 2\n');
      // synchronous_commit = on with s1 synchronous: once the INSERT returned, s1 has it (replay may lag a moment).
      const deadline = performance.now() + 15_000;
      let onStandby = '';
      while (!/^ 2$/m.test(onStandby)) {
        onStandby = (await walship(['sql', 's1', 'SELECT count(*) AS n FROM t', '--state', state])).stdout;
        if (performance.now() > deadline) break;
      }
      expect(onStandby).to.equal(' n\n---\n 2\n(1 row)\n');
      const refused = await walship(['sql', 's1', 'INSERT INTO t VALUES (3)', '--state', state]);
      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.include('ERROR:  cannot execute INSERT in a read-only transaction');

      const promote = await walship(['promote', 's1', '--state', state]);
      expect(promote.code).to.equal(0);
      expect(promote.stdout).to.equal('s1 promoted\n');
      const after = JSON.parse((await walship(['status', '--json', '--state', state])).stdout) as { rows: { server: string; role: string }[] };
      expect(after.rows.find((r) => r.server === 's1')!.role).to.equal('primary');
      expect((await walship(['logs', 's1', '--state', state])).stdout).to.include('selected new timeline ID: 2');

      const stop = await walship(['stop', '--state', state]);
      expect(stop.code).to.equal(0);
      expect(stop.stdout).to.equal('stopping the topology\nstopped\n');
      expect(existsSync(state), 'the state file is gone').to.equal(false);
      expect(processAlive(pid), 'the background process is gone').to.equal(false);
      expect((await walship(['status', '--state', state])).code, 'nothing to talk to').to.equal(2);
    } finally {
      // A failed step must not leave the background topology running.
      if (existsSync(state)) await walship(['stop', '--state', state]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

