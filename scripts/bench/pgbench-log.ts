/*
 * pgbench-log.ts — reading pgbench's per-transaction logs (-l), PostgreSQL 15's format.
 *
 * One line per transaction:
 *
 *   client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]
 *
 * `time` is the transaction's latency in microseconds, or `failed` / `skipped`;
 * time_epoch.time_us is when it ended. Every latency goes to `record` (an HdrHistogram in
 * practice), and the summary counts the rest and the span the transactions covered. A line
 * that does not read as above is an error naming the file and line: a log we misread would
 * make every percentile wrong.
 */

export interface PgbenchLogSummary {
  readonly committed: number;
  readonly failed: number;
  readonly skipped: number;
  /** When the earliest committed transaction started, µs since the epoch (null if none). */
  readonly firstStartUs: number | null;
  /** When the latest committed transaction ended, µs since the epoch (null if none). */
  readonly lastEndUs: number | null;
}

const INTEGER = /^\d+$/;

export function parsePgbenchLog(text: string, source: string, record: (latencyUs: number) => void): PgbenchLogSummary {
  let committed = 0;
  let failed = 0;
  let skipped = 0;
  let firstStartUs: number | null = null;
  let lastEndUs: number | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const fields = line.split(/\s+/);
    const bad = (why: string): Error => new Error(`${source}:${i + 1}: not a pgbench transaction log line (${why}): "${line}"`);
    if (fields.length < 6 || fields.length > 8) throw bad(`${fields.length} fields, expected 6 to 8`);
    const [client, transaction, time, script, epoch, micros] = fields as [string, string, string, string, string, string];
    for (const [name, value] of [['client_id', client], ['transaction_no', transaction], ['script_no', script], ['time_epoch', epoch], ['time_us', micros]] as const) {
      if (!INTEGER.test(value)) throw bad(`${name} is "${value}"`);
    }
    if (Number(micros) >= 1_000_000) throw bad(`time_us is ${micros}, over a second`);
    if (time === 'failed') {
      failed++;
      continue;
    }
    if (time === 'skipped') {
      skipped++;
      continue;
    }
    if (!INTEGER.test(time)) throw bad(`time is "${time}"`);
    const latencyUs = Number(time);
    const endUs = Number(epoch) * 1_000_000 + Number(micros);
    record(latencyUs);
    committed++;
    firstStartUs = firstStartUs === null ? endUs - latencyUs : Math.min(firstStartUs, endUs - latencyUs);
    lastEndUs = lastEndUs === null ? endUs : Math.max(lastEndUs, endUs);
  }
  return { committed, failed, skipped, firstStartUs, lastEndUs };
}

/** "tps = 1234.567890 (without initial connection time)" from pgbench's report. */
export function parsePgbenchTps(stdout: string): number {
  const match = /^tps = (\d+(?:\.\d+)?) \(without initial connection time\)$/m.exec(stdout);
  if (match === null) throw new Error(`pgbench printed no "tps = ... (without initial connection time)" line:\n${stdout.trim()}`);
  return Number(match[1]);
}
