/*
 * `walship up`, driven as a user would from a terminal: a topology file in, the servers'
 * state out, everything stopped; a malformed file refused with the position and a fix.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
});
