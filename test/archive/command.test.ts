/*
 * command.test.ts — archive_command, restore_command and archive_cleanup_command as
 * PostgreSQL 15 builds them, and the log lines it writes when they fail.
 */
import { expect } from 'chai';
import {
  archiveFailureLines, archiveRetriesExhaustedLine, buildArchiveCleanupCommand, buildArchiveCommand, buildRestoreCommand,
  recoveryCommandFailureLines, restoredLine, restoreFailureLines, substituteCommand, waitResultIsAnySignal, waitResultIsSignal,
  waitResultToStr,
} from '../../src/archive/command.js';

const SEG = '000000010000000000000003';
const RESTART = '000000010000000000000001';

describe('building archive and restore commands', () => {
  it('fills in the documentation\'s archive_command', () => {
    expect(buildArchiveCommand('test ! -f /mnt/server/archivedir/%f && cp %p /mnt/server/archivedir/%f', `pg_wal/${SEG}`, SEG))
      .to.equal(`test ! -f /mnt/server/archivedir/${SEG} && cp pg_wal/${SEG} /mnt/server/archivedir/${SEG}`);
  });

  it('fills in restore_command\'s %p, %f and %r', () => {
    expect(buildRestoreCommand('cp /mnt/server/archivedir/%f "%p" # keep from %r', 'pg_wal/RECOVERYXLOG', SEG, RESTART))
      .to.equal(`cp /mnt/server/archivedir/${SEG} "pg_wal/RECOVERYXLOG" # keep from ${RESTART}`);
  });

  it('fills in archive_cleanup_command\'s %r only', () => {
    expect(buildArchiveCleanupCommand('pg_archivecleanup /mnt/server/archivedir %r', RESTART))
      .to.equal(`pg_archivecleanup /mnt/server/archivedir ${RESTART}`);
    expect(buildArchiveCleanupCommand('echo %p %f %r', RESTART)).to.equal(`echo %p %f ${RESTART}`);
  });

  it('leaves %r in archive_command as written, as PostgreSQL 15 does', () => {
    expect(buildArchiveCommand('echo %r %f', 'pg_wal/x', 'x')).to.equal('echo %r x');
  });

  it('turns %% into % and reads what follows as text', () => {
    expect(substituteCommand('date +%%Y-%%m; echo %%f', { f: SEG })).to.equal('date +%Y-%m; echo %f');
    expect(substituteCommand('%%%f', { f: SEG })).to.equal(`%${SEG}`);
    expect(substituteCommand('%%%', {})).to.equal('%%');
  });

  it('keeps a % before anything else, or at the end, as not special', () => {
    expect(substituteCommand('printf "%s %d" %f 100%', { f: SEG })).to.equal(`printf "%s %d" ${SEG} 100%`);
    expect(substituteCommand('%', {})).to.equal('%');
    expect(substituteCommand('%P %F', { p: 'a', f: 'b' })).to.equal('%P %F');
  });

  it('puts values in as they are: quoting is the command\'s business', () => {
    expect(substituteCommand('cp %p /a', { p: 'dir with space/$(x)' })).to.equal('cp dir with space/$(x) /a');
  });
});

describe('reading how a command ended', () => {
  const exited = (exitCode: number) => ({ exitCode, signal: null });
  const killed = (signal: string) => ({ exitCode: null, signal });

  it('puts it in wait_result_to_str\'s words', () => {
    expect(waitResultToStr(exited(1))).to.equal('child process exited with exit code 1');
    expect(waitResultToStr(exited(126))).to.equal('command not executable');
    expect(waitResultToStr(exited(127))).to.equal('command not found');
    expect(waitResultToStr(killed('SIGKILL'))).to.equal('child process was terminated by signal 9: Killed');
    expect(waitResultToStr(killed('SIGSEGV'))).to.equal('child process was terminated by signal 11: Segmentation fault');
    expect(waitResultToStr({ exitCode: null, signal: null })).to.equal('child process exited with unrecognized status -1');
  });

  it('counts a shell\'s report of a killed child (128 + n) as a signal', () => {
    expect(waitResultIsSignal(killed('SIGTERM'), 'SIGTERM')).to.equal(true);
    expect(waitResultIsSignal(exited(143), 'SIGTERM')).to.equal(true);
    expect(waitResultIsSignal(exited(137), 'SIGTERM')).to.equal(false);
    expect(waitResultIsAnySignal(exited(130), false)).to.equal(true);
    expect(waitResultIsAnySignal(exited(128), false)).to.equal(false);
    expect(waitResultIsAnySignal(exited(127), false)).to.equal(false);
    expect(waitResultIsAnySignal(exited(127), true)).to.equal(true);
    expect(waitResultIsAnySignal(exited(126), true)).to.equal(true);
    expect(waitResultIsAnySignal(exited(125), true)).to.equal(false);
  });
});

describe('PostgreSQL\'s log lines for a failed command', () => {
  const command = `cp pg_wal/${SEG} /archive/${SEG}`;

  it('logs a failed archive_command with its exit code and the command run', () => {
    expect(archiveFailureLines({ exitCode: 1, signal: null }, command)).to.deep.equal([
      { level: 'info', text: 'archive command failed with exit code 1' },
      { level: 'info', text: `DETAIL:  The failed archive command was: ${command}` },
    ]);
  });

  it('makes an archive_command killed by a signal, or not found, FATAL', () => {
    expect(archiveFailureLines({ exitCode: null, signal: 'SIGTERM' }, command)).to.deep.equal([
      { level: 'fatal', text: 'archive command was terminated by signal 15: Terminated' },
      { level: 'fatal', text: `DETAIL:  The failed archive command was: ${command}` },
    ]);
    expect(archiveFailureLines({ exitCode: 127, signal: null }, 'cpp x y')[0]).to.deep.equal({ level: 'fatal', text: 'archive command failed with exit code 127' });
    expect(archiveFailureLines({ exitCode: null, signal: null }, 'x')[0]).to.deep.equal({ level: 'info', text: 'archive command exited with unrecognized status -1' });
  });

  it('logs a restore_command that found nothing at DEBUG2, one killed by a signal as FATAL', () => {
    expect(restoreFailureLines({ exitCode: 1, signal: null }, SEG)).to.deep.equal([
      { level: 'debug', text: `could not restore file "${SEG}" from archive: child process exited with exit code 1` },
    ]);
    expect(restoreFailureLines({ exitCode: 127, signal: null }, SEG)).to.deep.equal([
      { level: 'fatal', text: `could not restore file "${SEG}" from archive: command not found` },
    ]);
    expect(restoredLine(SEG)).to.deep.equal({ level: 'info', text: `restored log file "${SEG}" from archive` });
  });

  it('quotes archive_cleanup_command as set, as a WARNING even when a signal ended it', () => {
    expect(recoveryCommandFailureLines('archive_cleanup_command', 'pg_archivecleanup /archive %r', { exitCode: 2, signal: null })).to.deep.equal([
      { level: 'warning', text: 'archive_cleanup_command "pg_archivecleanup /archive %r": child process exited with exit code 2' },
    ]);
    expect(recoveryCommandFailureLines('archive_cleanup_command', 'x', { exitCode: null, signal: 'SIGKILL' })[0]!.level).to.equal('warning');
    expect(recoveryCommandFailureLines('recovery_end_command', 'x', { exitCode: null, signal: 'SIGKILL' })).to.deep.equal([
      { level: 'fatal', text: 'recovery_end_command "x": child process was terminated by signal 9: Killed' },
    ]);
  });

  it('warns after too many failures in a row', () => {
    expect(archiveRetriesExhaustedLine(SEG)).to.deep.equal({
      level: 'warning', text: `archiving write-ahead log file "${SEG}" failed too many times, will try again later`,
    });
  });
});
