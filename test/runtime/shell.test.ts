/*
 * shell.test.ts — `process.run`: real shell commands (exit codes, signals, stderr, timeouts,
 * working directory) and their stand-in under simulation.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineBehaviour, type Message } from '../../src/runtime/actor.js';
import { Kernel } from '../../src/runtime/kernel.js';
import { RealShell, SHELL_STDERR_MAX_BYTES, simulatedShell, type ProcessRunOp } from '../../src/runtime/shell.js';
import { SimScheduler } from '../../src/runtime/simulator.js';
import { until } from '../helpers.js';

const RUNNER = defineBehaviour(import.meta.url, 'ShellRunner', (args: { ops: ProcessRunOp[]; results: Message[] }) => ({
  start(ctx) {
    args.ops.forEach((op, i) => ctx.io(op, `Ran${i}`));
  },
  receive(msg: Message) {
    args.results.push(msg);
  },
}));

/** Running, that is: a killed process waiting for its reaper (a zombie) no longer counts. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('process.run', () => {
  let dir: string;
  let shell: RealShell;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'walship-shell-'));
    shell = new RealShell();
  });

  afterEach(() => {
    shell.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (command: string, timeoutMs?: number) =>
    shell.run({ kind: 'process.run', command, cwd: dir, ...(timeoutMs === undefined ? {} : { timeoutMs }) } satisfies ProcessRunOp);

  it('reports the exit code and what the command wrote to stderr, not its stdout', async () => {
    expect(await run('true')).to.deep.equal({ exitCode: 0, signal: null, stderr: '', timedOut: false });
    expect(await run('echo to stdout; echo "cp: cannot stat \'x\'" >&2; exit 3'))
      .to.deep.equal({ exitCode: 3, signal: null, stderr: "cp: cannot stat 'x'\n", timedOut: false });
  });

  it('reports a command the shell cannot find as exit code 127, not as a failed operation', async () => {
    const result = await run('no-such-command-walship');
    expect(result.exitCode).to.equal(127);
    expect(result.stderr).to.contain('not found');
  });

  it('runs in the working directory given', async () => {
    expect((await run('touch marker')).exitCode).to.equal(0);
    expect(existsSync(join(dir, 'marker'))).to.equal(true);
  });

  it('reports the signal that killed the shell', async () => {
    expect(await run('kill -TERM $$')).to.deep.equal({ exitCode: null, signal: 'SIGTERM', stderr: '', timedOut: false });
  });

  it('kills the command and everything it started at the timeout', async () => {
    const started = performance.now();
    const result = await run('sleep 30 & echo $! > sleeper; wait', 300);
    expect(result).to.deep.include({ exitCode: null, signal: 'SIGKILL', timedOut: true });
    expect(performance.now() - started).to.be.lessThan(5_000);
    const sleeper = Number(readFileSync(join(dir, 'sleeper'), 'utf8'));
    await until(() => !alive(sleeper), 'the shell\'s child to be gone too');
  });

  it('keeps only the tail of a long stderr', async () => {
    const result = await run(`head -c ${SHELL_STDERR_MAX_BYTES * 3} /dev/zero | tr '\\0' a >&2; echo THE-END >&2; exit 1`);
    expect(result.exitCode).to.equal(1);
    expect(result.stderr.length).to.equal(SHELL_STDERR_MAX_BYTES);
    expect(result.stderr.endsWith('aTHE-END\n')).to.equal(true);
  });

  it('fails the operation only when no shell can start (a missing working directory)', async () => {
    let error: unknown;
    try {
      await shell.run({ kind: 'process.run', command: 'true', cwd: join(dir, 'missing') } satisfies ProcessRunOp);
    } catch (err) {
      error = err;
    }
    expect((error as { code?: string }).code).to.equal('ENOENT');
  });

  it('answers actors through the real kernel', async () => {
    const kernel = new Kernel();
    const results: Message[] = [];
    try {
      kernel.spawn({
        name: 'runner',
        behaviour: RUNNER,
        args: { ops: [{ kind: 'process.run', command: 'exit 5', cwd: dir }, { kind: 'process.run', command: 'true', cwd: join(dir, 'missing') }], results },
      });
      await until(() => results.length === 2, 'both commands');
      expect(results).to.deep.include({ type: 'Ran0', ok: true, value: { exitCode: 5, signal: null, stderr: '', timedOut: false } });
      expect(results.find((r) => r.type === 'Ran1')).to.deep.include({ ok: false });
    } finally {
      await kernel.shutdown();
    }
  });
});

describe('process.run under simulation', () => {
  const op: ProcessRunOp = { kind: 'process.run', command: 'cp pg_wal/000000010000000000000001 /archive/000000010000000000000001', cwd: '/data' };

  it('answers as a shell that finds no command, unless told otherwise', () => {
    const results: Message[] = [];
    const sim = new SimScheduler({ seed: 1 });
    const kernel = new Kernel({ id: 'n', scheduler: sim });
    kernel.spawn({ name: 'runner', behaviour: RUNNER, args: { ops: [op], results } });
    sim.run();
    expect(results).to.deep.equal([{
      type: 'Ran0', ok: true, value: { exitCode: 127, signal: null, stderr: 'sh: command not found under simulation', timedOut: false },
    }]);
  });

  it('answers with what the test decides, after the latency it picks', () => {
    const results: Message[] = [];
    const seen: string[] = [];
    const sim = new SimScheduler({
      seed: 1,
      io: {
        'process.run': simulatedShell((asked) => {
          seen.push(`${asked.cwd}: ${asked.command}`);
          return { result: { exitCode: 0, signal: null, stderr: '', timedOut: false }, latencyMs: 250 };
        }),
      },
    });
    const kernel = new Kernel({ id: 'n', scheduler: sim });
    kernel.spawn({ name: 'runner', behaviour: RUNNER, args: { ops: [op], results } });
    sim.run();
    expect(seen).to.deep.equal([`/data: ${op.command}`]);
    expect(results).to.deep.equal([{ type: 'Ran0', ok: true, value: { exitCode: 0, signal: null, stderr: '', timedOut: false } }]);
    expect(sim.elapsedMs()).to.be.at.least(250);
  });
});
