/*
 * bench.test.ts — `walship bench`: its percentiles and tables on latencies we chose, its
 * reading of a real pgbench log, its chart, its option parsing, and one real run of the
 * command's core function on a small inline topology.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPostgres, PostgresUnavailable } from '../../scripts/bench/as-postgres.js';
import { runBench } from '../../scripts/bench/bench.js';
import { newHistogram, recordMicros, summarize } from '../../scripts/bench/latency.js';
import { DEFAULT_OPTIONS, OptionError, parseClients, parseModes, parseStandbyNames, sqlLiteral, type BenchOptions } from '../../scripts/bench/options.js';
import { parsePgbenchLog, parsePgbenchTps } from '../../scripts/bench/pgbench-log.js';
import { compare, comparisonTable, resultOf, resultsTable, type BenchReport, type CombinationResult } from '../../scripts/bench/report.js';
import { latencySvg } from '../../scripts/bench/svg.js';
import { PGBENCH_LOG_THREAD_0, PGBENCH_LOG_THREAD_1, PGBENCH_STDOUT } from './fixtures/pgbench-log.js';

function histogramOf(latencies: readonly number[]) {
  const histogram = newHistogram();
  for (const us of latencies) recordMicros(histogram, us);
  return histogram;
}

function result(system: CombinationResult['system'], mode: CombinationResult['mode'], latencies: readonly number[], tps: number): CombinationResult {
  return resultOf(system, { clients: 1, standbyNames: 'FIRST 1 (s1, s2)', mode }, { histogram: histogramOf(latencies), transactions: latencies.length, seconds: 1, tps });
}

describe('walship bench', () => {
  describe('latency summary', () => {
    it('gives p50, p95, p99 and max of 1..1000 µs exactly', () => {
      const latencies = Array.from({ length: 1000 }, (_, i) => i + 1);
      const summary = summarize(histogramOf(latencies.reverse()));
      expect(summary).to.deep.equal({ count: 1000, meanUs: 501, p50Us: 500, p95Us: 950, p99Us: 990, maxUs: 1000 });
    });

    it('keeps three significant digits for long latencies, and never reports a percentile above the max', () => {
      const summary = summarize(histogramOf([1_234_567, 1_234_567, 2_500_000]));
      expect(summary.p50Us).to.be.within(1_234_567 * 0.999, 1_234_567 * 1.001);
      expect(summary.maxUs).to.be.within(2_500_000 * 0.999, 2_500_000 * 1.001);
      expect(summary.p99Us).to.be.at.most(summary.maxUs);
    });

    it('reports zeros for a run that committed nothing, and refuses a negative latency', () => {
      expect(summarize(newHistogram())).to.deep.equal({ count: 0, meanUs: 0, p50Us: 0, p95Us: 0, p99Us: 0, maxUs: 0 });
      expect(() => recordMicros(newHistogram(), -1)).to.throw('non-negative');
    });

    it('prints a table in milliseconds and compares walship with PostgreSQL per combination', () => {
      const results = [
        result('walship', 'off', [100, 200, 300, 400], 4000),
        result('postgresql', 'off', [50, 100, 150, 200], 8000),
        result('walship', 'local', [2000, 3000], 400),
        result('postgresql', 'local', [1000, 1500], 800),
      ];
      const lines = resultsTable(results);
      expect(lines[0]).to.match(/^system +clients +synchronous_standby_names +synchronous_commit +xacts +tps +p50 ms +p95 ms +p99 ms +max ms$/);
      expect(lines[2]).to.match(/^walship +1 +FIRST 1 \(s1, s2\) +off +4 +4000\.0 +0\.200 +0\.400 +0\.400 +0\.400$/);
      const comparisons = compare(results);
      expect(comparisons.map((c) => [c.mode, c.p50Ratio, c.p99Ratio, c.tpsRatio])).to.deep.equal([['off', 2, 2, 0.5], ['local', 2, 2, 0.5]]);
      expect(comparisonTable(comparisons)[2]).to.match(/ off +4000\.0 +8000\.0 +0\.200 +0\.100 +2\.00x +0\.400 +0\.200 +2\.00x$/);
    });
  });

  describe('pgbench log', () => {
    it("reads PostgreSQL 15's per-transaction logs into the same histogram and summary", () => {
      const histogram = newHistogram();
      const record = (us: number): void => recordMicros(histogram, us);
      const first = parsePgbenchLog(PGBENCH_LOG_THREAD_0, 'pgbench_log.22799', record);
      const second = parsePgbenchLog(PGBENCH_LOG_THREAD_1, 'pgbench_log.22799.1', record);
      expect(first).to.deep.equal({ committed: 6, failed: 0, skipped: 0, firstStartUs: 1795324932_471121, lastEndUs: 1795324932_473708 });
      expect(second.committed).to.equal(6);
      expect(second.lastEndUs).to.equal(1795324932_473796);
      // 12 values: p95 is the 12th (nearest rank), as HdrHistogram counts.
      expect(summarize(histogram)).to.deep.equal({ count: 12, meanUs: 431, p50Us: 191, p95Us: 1657, p99Us: 1657, maxUs: 1657 });
      expect(parsePgbenchTps(PGBENCH_STDOUT)).to.equal(4308.797127);
    });

    it('counts failed and skipped transactions apart, with the optional lag and retries columns', () => {
      const latencies: number[] = [];
      const summary = parsePgbenchLog('0 1 250 0 1700000000 100 12\n0 2 failed 0 1700000000 900 0 1\n0 3 skipped 0 1700000001 5 30\n', 'log', (us) => latencies.push(us));
      expect(latencies).to.deep.equal([250]);
      expect(summary).to.include({ committed: 1, failed: 1, skipped: 1 });
    });

    it('rejects a line that is not a transaction log line, naming the file and line', () => {
      expect(() => parsePgbenchLog('0 1 250 0 1700000000 100\n1700000000 12 34\n', 'pgbench_log.1', () => {})).to.throw('pgbench_log.1:2: not a pgbench transaction log line (3 fields');
      expect(() => parsePgbenchLog('0 1 2.5ms 0 1700000000 100\n', 'pgbench_log.1', () => {})).to.throw('time is "2.5ms"');
      expect(() => parsePgbenchTps('tps = fast\n')).to.throw('no "tps = ...');
    });
  });

  describe('SVG chart', () => {
    it('draws p50 and p99 bars for every mode and system, with escaped labels', () => {
      const modes = ['off', 'local', 'remote_write', 'on', 'remote_apply'] as const;
      const results = modes.flatMap((mode, i) => [result('walship', mode, [100 * (i + 1), 1000 * (i + 1)], 100), result('postgresql', mode, [50 * (i + 1), 500 * (i + 1)], 200)]);
      const svg = latencySvg(results, 'insert mix, <2> standbys & more');
      expect(svg).to.match(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+">/);
      expect(svg.trimEnd()).to.match(/<\/svg>$/);
      for (const mode of modes) expect(svg).to.include(`>${mode}</text>`);
      expect(svg.match(/<rect x="\d+(\.\d+)?" y="[\d.]+" width="16" height="[\d.]+" fill="#[0-9a-f]{6}">/g)).to.have.length(modes.length * 4);
      expect(svg).to.include('<title>walship remote_apply p99: 5.00 ms</title>');
      expect(svg).to.include('insert mix, &lt;2&gt; standbys &amp; more');
      expect(svg).to.include('>walship p50</text>').and.to.include('>postgresql p99</text>');
      // Well-formed enough for an XML parser: no attribute twice in a tag, balanced tags.
      for (const tag of svg.match(/<[a-z][^>]*>/g) ?? []) {
        const names = [...tag.matchAll(/\s([a-z-]+)="/g)].map((m) => m[1]);
        expect(new Set(names).size, tag).to.equal(names.length);
      }
      const opened = (svg.match(/<(rect|text|title|line|svg)\b(?:[^>]*[^/])?>/g) ?? []).length;
      const closed = (svg.match(/<\/(rect|text|title|line|svg)>/g) ?? []).length;
      expect(opened).to.equal(closed);
    });
  });

  describe('options', () => {
    it('parses lists and refuses what PostgreSQL would not take, saying which option', () => {
      expect(parseClients('1, 8')).to.deep.equal([1, 8]);
      expect(parseModes('remote_apply,off')).to.deep.equal(['remote_apply', 'off']);
      expect(() => parseClients('1,,8')).to.throw(OptionError, '--clients');
      expect(() => parseClients('0')).to.throw(OptionError, 'from 1 to 256');
      expect(() => parseModes('off,remote')).to.throw(OptionError, '"remote" is not a synchronous_commit level');
      expect(() => parseModes('off,off')).to.throw(OptionError, 'twice');
      expect(() => parseStandbyNames('s1\ns2')).to.throw(OptionError, 'one line');
      expect(sqlLiteral("ANY 1 (\"s'1\")")).to.equal("'ANY 1 (\"s''1\")'");
    });

    it('says which PostgreSQL programs are missing before starting anything', () => {
      expect(() => findPostgres('/nonexistent/postgresql/15/bin')).to.throw(PostgresUnavailable,
        "--compare-postgres needs PostgreSQL 15's programs, and these are missing: /nonexistent/postgresql/15/bin/initdb, /nonexistent/postgresql/15/bin/pg_ctl");
    });
  });

  describe('a real run', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'walship-bench-test-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('runs every combination on an inline primary with one standby and writes the JSON report', async () => {
      const jsonFile = join(dir, 'bench.json');
      const options: BenchOptions = {
        ...DEFAULT_OPTIONS,
        clients: [1], length: { kind: 'transactions', perClient: 20 }, modes: ['off', 'local'], standbys: 1,
        placement: 'inline', jsonFile, dir: join(dir, 'data'), progress: false,
      };
      const printed: string[] = [];
      const report = await runBench(options, { print: (line) => printed.push(line), note: () => {} });

      const json = JSON.parse(readFileSync(jsonFile, 'utf8')) as BenchReport;
      expect(json).to.deep.equal(JSON.parse(JSON.stringify(report)));
      expect(json.tool).to.equal('walship bench');
      expect(json.options).to.deep.include({ clients: [1], transactionsPerClient: 20, durationSeconds: null, modes: ['off', 'local'], standbys: 1, placement: 'inline', mix: 'insert' });
      expect(json.results.map((r) => [r.system, r.clients, r.standbyNames, r.mode])).to.deep.equal([
        ['walship', 1, 'FIRST 1 (s1, s2)', 'off'],
        ['walship', 1, 'FIRST 1 (s1, s2)', 'local'],
      ]);
      for (const r of json.results) {
        expect(r.transactions).to.equal(20);
        expect(r.tps).to.be.greaterThan(0);
        expect(r.latency.count).to.equal(20);
        expect(r.latency.p50Us).to.be.greaterThan(0);
        expect(r.latency.p50Us).to.be.at.most(r.latency.p95Us);
        expect(r.latency.p95Us).to.be.at.most(r.latency.p99Us);
        expect(r.latency.p99Us).to.be.at.most(r.latency.maxUs);
      }
      expect(json.comparisons).to.deep.equal([]);
      expect(printed.join('\n')).to.match(/walship +1 +FIRST 1 \(s1, s2\) +local +20 /);
      // A primary and its standby were made where --dir said, and are kept there.
      expect(existsSync(join(dir, 'data', 'walship', 'primary', 'pg_wal'))).to.equal(true);
      expect(existsSync(join(dir, 'data', 'walship', 's1', 'standby.signal'))).to.equal(true);
    });
  });
});
