/*
 * command.ts — archive_command, restore_command and archive_cleanup_command as PostgreSQL
 * builds them and reports their failures.
 *
 * Building a command replaces `%p` (the file's path, relative to the data directory), `%f`
 * (its file name) and `%r` (the file name of the last restartpoint's segment) with their
 * values, and `%%` with `%`. A placeholder a command does not have stays as written, and so
 * does a `%` before any other character or at the end: PostgreSQL 15's loops treat such a `%`
 * as not special (16 made them errors; walship follows 15, whose servers it compares itself
 * with). So archive_command has `%p` and `%f`, restore_command `%p`, `%f` and `%r`, and
 * archive_cleanup_command / recovery_end_command only `%r`. Quoting is the command's
 * author's business: values go in as they are, exactly as PostgreSQL puts them.
 *
 * A command's outcome is what the shell reported (runtime/shell.ts): an exit code, or the
 * signal that killed it. The report functions return the log lines PostgreSQL writes for a
 * failure, at its levels: a command killed by a signal, or one the shell could not find or
 * run (exit codes above 125, as a shell reports a killed child), is FATAL for the process that
 * ran it; other failures are ordinary. Nothing here runs a command or writes a log.
 */
import type { LogLevel } from '../runtime/context.js';

/** How a command ended, as `process.run` reports it. */
export interface CommandOutcome {
  readonly exitCode: number | null;
  readonly signal: string | null;
}

/** One log line: `text` is the message, or a `DETAIL:  ` line that follows it. */
export interface LogLine {
  readonly level: LogLevel;
  readonly text: string;
}

export interface Placeholders {
  /** %p: the path of the file, relative to the data directory. */
  readonly p?: string;
  /** %f: the file name. */
  readonly f?: string;
  /** %r: the file name of the segment holding the last restartpoint's redo position. */
  readonly r?: string;
}

/** Replaces the placeholders given (and `%%`); every other `%` stays as written. */
export function substituteCommand(command: string, values: Placeholders): string {
  let out = '';
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    const next = command[i + 1];
    const value = next === 'p' || next === 'f' || next === 'r' ? values[next] : undefined;
    if (next === '%') {
      out += '%';
      i++;
    } else if (value !== undefined) {
      out += value;
      i++;
    } else {
      // Not special: the '%' is kept and what follows it is read as ordinary text.
      out += '%';
    }
  }
  return out;
}

/** archive_command for one segment: `path` relative to the data directory (pg_wal/<file>). */
export function buildArchiveCommand(command: string, path: string, file: string): string {
  return substituteCommand(command, { p: path, f: file });
}

/** restore_command asking for `file`, to be written at `path` (relative to the data directory). */
export function buildRestoreCommand(command: string, path: string, file: string, lastRestartPointFile: string): string {
  return substituteCommand(command, { p: path, f: file, r: lastRestartPointFile });
}

/** archive_cleanup_command (and recovery_end_command): only `%r`. */
export function buildArchiveCleanupCommand(command: string, lastRestartPointFile: string): string {
  return substituteCommand(command, { r: lastRestartPointFile });
}

// ---- outcomes, as src/common/wait_error.c reads them -------------------------------------

/** Linux's signal numbers and glibc's strsignal() texts, which PostgreSQL prints. */
const SIGNALS: Readonly<Record<string, readonly [number, string]>> = {
  SIGHUP: [1, 'Hangup'], SIGINT: [2, 'Interrupt'], SIGQUIT: [3, 'Quit'], SIGILL: [4, 'Illegal instruction'],
  SIGTRAP: [5, 'Trace/breakpoint trap'], SIGABRT: [6, 'Aborted'], SIGIOT: [6, 'Aborted'], SIGBUS: [7, 'Bus error'],
  SIGFPE: [8, 'Floating point exception'], SIGKILL: [9, 'Killed'], SIGUSR1: [10, 'User defined signal 1'],
  SIGSEGV: [11, 'Segmentation fault'], SIGUSR2: [12, 'User defined signal 2'], SIGPIPE: [13, 'Broken pipe'],
  SIGALRM: [14, 'Alarm clock'], SIGTERM: [15, 'Terminated'], SIGSTKFLT: [16, 'Stack fault'], SIGCHLD: [17, 'Child exited'],
  SIGCONT: [18, 'Continued'], SIGSTOP: [19, 'Stopped (signal)'], SIGTSTP: [20, 'Stopped'], SIGTTIN: [21, 'Stopped (tty input)'],
  SIGTTOU: [22, 'Stopped (tty output)'], SIGURG: [23, 'Urgent I/O condition'], SIGXCPU: [24, 'CPU time limit exceeded'],
  SIGXFSZ: [25, 'File size limit exceeded'], SIGVTALRM: [26, 'Virtual timer expired'], SIGPROF: [27, 'Profiling timer expired'],
  SIGWINCH: [28, 'Window changed'], SIGIO: [29, 'I/O possible'], SIGPOLL: [29, 'I/O possible'], SIGPWR: [30, 'Power failure'],
  SIGSYS: [31, 'Bad system call'],
};

/** The signal's number and description ("15", "Terminated"); unknown names keep their name. */
function describeSignal(signal: string): { number: string; text: string } {
  const known = SIGNALS[signal];
  return known === undefined ? { number: signal, text: signal } : { number: String(known[0]), text: known[1] };
}

/**
 * What system() would have returned: an exit code, a signal, or neither (no shell could be
 * started: system() returns -1, which PostgreSQL reports as an unrecognized status).
 */
type Ending = { readonly exited: number } | { readonly signaled: string } | { readonly unrecognized: number };

function ending(outcome: CommandOutcome): Ending {
  if (outcome.signal !== null) return { signaled: outcome.signal };
  if (outcome.exitCode !== null) return { exited: outcome.exitCode };
  return { unrecognized: -1 };
}

/** PostgreSQL's wait_result_to_str: why a command failed, in words. */
export function waitResultToStr(outcome: CommandOutcome): string {
  const end = ending(outcome);
  if ('exited' in end) {
    // Shells give these two exit codes a meaning of their own.
    if (end.exited === 126) return 'command not executable';
    if (end.exited === 127) return 'command not found';
    return `child process exited with exit code ${end.exited}`;
  }
  if ('signaled' in end) {
    const signal = describeSignal(end.signaled);
    return `child process was terminated by signal ${signal.number}: ${signal.text}`;
  }
  return `child process exited with unrecognized status ${end.unrecognized}`;
}

/** PostgreSQL's wait_result_is_signal: killed by `signal`, directly or as the shell reports it (128 + n). */
export function waitResultIsSignal(outcome: CommandOutcome, signal: string): boolean {
  if (outcome.signal !== null) return outcome.signal === signal;
  const known = SIGNALS[signal];
  return known !== undefined && outcome.exitCode === 128 + known[0];
}

/**
 * PostgreSQL's wait_result_is_any_signal: killed by a signal, directly or as the shell
 * reports it (exit code above 128), or with includeCommandNotFound also 126 and 127.
 */
export function waitResultIsAnySignal(outcome: CommandOutcome, includeCommandNotFound: boolean): boolean {
  if (outcome.signal !== null) return true;
  return outcome.exitCode !== null && outcome.exitCode > (includeCommandNotFound ? 125 : 128);
}

// ---- PostgreSQL's log lines ------------------------------------------------------------

/**
 * A failed archive_command (shell_archive.c): FATAL when a signal (or a shell that found
 * nothing to run) ended it, since the archiver should die too; LOG otherwise. `command` is
 * the command as run, placeholders replaced.
 */
export function archiveFailureLines(outcome: CommandOutcome, command: string): LogLine[] {
  const level: LogLevel = waitResultIsAnySignal(outcome, true) ? 'fatal' : 'info';
  const end = ending(outcome);
  let text: string;
  if ('exited' in end) {
    text = `archive command failed with exit code ${end.exited}`;
  } else if ('signaled' in end) {
    const signal = describeSignal(end.signaled);
    text = `archive command was terminated by signal ${signal.number}: ${signal.text}`;
  } else {
    text = `archive command exited with unrecognized status ${end.unrecognized}`;
  }
  return [{ level, text }, { level, text: `DETAIL:  The failed archive command was: ${command}` }];
}

/**
 * A restore_command that did not deliver `file` (xlogarchive.c). Usually that only means the
 * archive has no such file, which recovery expects sooner or later: DEBUG2. A signal, or a
 * shell that could not run the command, is FATAL. (A SIGTERM means a fast shutdown:
 * PostgreSQL's startup process then exits without a word; check waitResultIsSignal first.)
 */
export function restoreFailureLines(outcome: CommandOutcome, file: string): LogLine[] {
  const level: LogLevel = waitResultIsAnySignal(outcome, true) ? 'fatal' : 'debug';
  return [{ level, text: `could not restore file "${file}" from archive: ${waitResultToStr(outcome)}` }];
}

/** The line for a file restore_command delivered. */
export function restoredLine(file: string): LogLine {
  return { level: 'info', text: `restored log file "${file}" from archive` };
}

export type RecoveryCommandName = 'archive_cleanup_command' | 'recovery_end_command';

/**
 * A failed archive_cleanup_command or recovery_end_command (ExecuteRecoveryCommand): a
 * WARNING, or FATAL for recovery_end_command ended by a signal. PostgreSQL 15 quotes the
 * setting as written, placeholders and all, so `setting` is the setting, not the command run.
 */
export function recoveryCommandFailureLines(commandName: RecoveryCommandName, setting: string, outcome: CommandOutcome): LogLine[] {
  const failOnSignal = commandName === 'recovery_end_command';
  const level: LogLevel = failOnSignal && waitResultIsAnySignal(outcome, true) ? 'fatal' : 'warning';
  return [{ level, text: `${commandName} "${setting}": ${waitResultToStr(outcome)}` }];
}

/** The warning after NUM_ARCHIVE_RETRIES failures in a row of one segment (pgarch.c). */
export function archiveRetriesExhaustedLine(file: string): LogLine {
  return { level: 'warning', text: `archiving write-ahead log file "${file}" failed too many times, will try again later` };
}
