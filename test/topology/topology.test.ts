/*
 * Topology files: the examples parse and start (every standby streaming, everything stopped
 * and removed afterwards); a malformed file fails before anything starts, naming the file,
 * line and column, what is wrong and how to fix it.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTopology, TopologyError } from '../../src/topology/topology.js';
import { startTopology } from '../../src/topology/start.js';
import { processAlive } from '../../scripts/control.js';

const EXAMPLES = join(process.cwd(), 'examples');

/** Worker threads (their MessagePorts), sockets, listening ports and child processes this process holds. */
function held(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (['MessagePort', 'TCPServerWrap', 'TCPSocketWrap', 'ProcessWrap'].includes(kind)) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}


function refused(text: string): TopologyError {
  try {
    parseTopology(text, 'bad.yaml');
  } catch (err) {
    expect(err).to.be.instanceOf(TopologyError);
    return err as TopologyError;
  }
  throw new Error('the topology was accepted');
}

describe('topology files', function () {
  this.timeout(120_000);

  it('reads the examples: servers in start order, settings by PostgreSQL name', () => {
    const cascade = parseTopology(readFileSync(join(EXAMPLES, 'cascade.yaml'), 'utf8'), 'cascade.yaml');
    expect(cascade.servers.map((s) => [s.name, s.upstream])).to.deep.equal([['primary', null], ['s1', 'primary'], ['s2', 's1'], ['s3', 's2']]);
    const sync = parseTopology(readFileSync(join(EXAMPLES, 'sync-first.yaml'), 'utf8'), 'sync-first.yaml');
    expect(sync.servers[0]!.settings).to.deep.equal({ synchronous_standby_names: 'FIRST 1 (s1, s2)' });
    expect(sync.settings).to.deep.equal({ wal_writer_delay: '10ms' });
    expect(sync.servers.find((s) => s.name === 's2')!.slot).to.equal('s2');
    const mixed = parseTopology(readFileSync(join(EXAMPLES, 'mixed-placement.yaml'), 'utf8'), 'mixed-placement.yaml');
    expect(mixed.servers.map((s) => s.placement)).to.deep.equal(['thread', 'process', 'inline']);
  });

  it('refuses mistakes before anything starts, with the position and a fix', () => {
    const unknown = refused('servers:\n  primary: {}\n  s1:\n    upstrem: primary\n');
    expect(unknown.message).to.equal('bad.yaml:4:5: unknown key "upstrem" in server "s1"\n  fix: did you mean "upstream"? (known: upstream, placement, slot, settings, streaming)');
    const badValue = refused('settings:\n  wal_writer_delay: fast\nservers:\n  primary: {}\n');
    expect([badValue.line, badValue.column]).to.deep.equal([2, 21]);
    expect(badValue.problem).to.include('invalid value for parameter "wal_writer_delay": "fast"');
    const unknownSetting = refused('servers:\n  primary:\n    settings:\n      shared_bufers: 1GB\n');
    expect(unknownSetting.problem).to.equal('unrecognized configuration parameter "shared_bufers"');
    expect(unknownSetting.line).to.equal(4);
    const cycle = refused('servers:\n  primary: {}\n  a: { upstream: b }\n  b: { upstream: a }\n');
    expect(cycle.problem).to.equal('a cycle of upstreams: a -> b -> a');
    expect(cycle.fix).to.equal('every chain of upstreams must end at the primary');
    const missing = refused('servers:\n  primary: {}\n  s1: { upstream: primry }\n');
    expect(missing.problem).to.equal('server "s1" streams from "primry", which is not in this topology');
    expect(missing.fix).to.equal('use one of: primary');
    expect([missing.line, missing.column]).to.deep.equal([3, 19]);
    const twice = refused('servers:\n  primary: {}\n  s1: { upstream: primary }\n  s1: { upstream: primary }\n');
    expect(twice.line).to.equal(4);
    expect(twice.problem).to.include('two servers with one name');
    expect(refused('servers:\n  a: {}\n  b: {}\n').problem).to.equal('more than one primary: a, b have no upstream');
    expect(refused('placement: cloud\nservers:\n  primary: {}\n').fix).to.equal('use one of: inline, thread, process');
    expect(refused('servers:\n  primary: {}\n  w: { upstream: primary, streaming: false }\n').problem).to.equal('server "w" has streaming: false but the topology has no archive');
    expect(refused('servers: [\n').problem).to.match(/^not valid YAML/);
    // What would only fail, or silently not stream, once started.
    expect(refused('servers:\n  primary: {}\n  a: { upstream: primary, slot: x }\n  b: { upstream: primary, slot: x }\n').problem).to.equal('slot "x" on "primary" is used by two standbys');
    expect(refused('archive: a\nservers:\n  primary: {}\n  w: { upstream: primary, slot: w, streaming: false }\n').problem).to.equal('server "w" has a slot but streaming: false');
    expect(refused('servers:\n  primary: {}\n  s: { upstream: primary, settings: { wal_segment_size: 2MB } }\n').fix).to.equal('set it once, at the top level: wal_segment_size: 16MB');
    expect(refused('servers:\n  primary: {}\n  s: { upstream: primary, settings: { primary_slot_name: s } }\n').problem).to.equal('primary_slot_name is set in "settings"');
    expect(refused('servers:\n  primary: { settings: { max_wal_senders: 0 } }\n  s: { upstream: primary }\n').problem).to.equal('server "primary" has standbys but max_wal_senders = 0');
    expect(refused('servers:\n  primary: {}\n  s: { upstream: primary, settings: { hot_standby: off } }\n  t: { upstream: s }\n').problem).to.equal('standby "s" has standbys of its own but hot_standby = off');
  });

  for (const example of readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort()) {
    it(`starts ${example}: every standby streams (or restores), then everything stops and is removed`, async () => {
      const topology = parseTopology(readFileSync(join(EXAMPLES, example), 'utf8'), example);
      const dir = mkdtempSync(join(tmpdir(), 'walship-topology-'));
      const resourcesBefore = held();
      const { cluster, servers } = await startTopology(topology, dir);
      const pids: number[] = [];
      try {
        for (const server of servers.values()) {
          const pid = await server.pid();
          if (pid !== undefined && pid !== process.pid) pids.push(pid);
        }
        const primary = servers.get(topology.servers[0]!.name)!;
        await primary.query('CREATE TABLE t (x int)');
        await primary.query('INSERT INTO t VALUES (1)');
        if (topology.archive !== null) await primary.query('SELECT pg_switch_wal()');
        for (const spec of topology.servers.slice(1)) {
          const standby = servers.get(spec.name)!;
          const deadline = performance.now() + 30_000;
          for (;;) {
            const status = (await standby.query('SELECT status FROM pg_stat_wal_receiver')).rows[0]?.['status'];
            const rows = await standby.query('SELECT count(*) AS n FROM t').then((r) => r.rows[0]!['n'], () => 0);
            if (rows === 1 && (status === 'streaming' || !spec.streaming)) break;
            if (performance.now() > deadline) throw new Error(`${spec.name} did not catch up (status ${String(status)}, rows ${String(rows)})`);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      } finally {
        await cluster.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
      expect(existsSync(dir)).to.equal(false);
      // No worker thread, socket, listening port or child process is left behind (a child's
      // exit and its listener's close are reported a moment after the stop).
      const deadline = performance.now() + 10_000;
      while (JSON.stringify(held()) !== JSON.stringify(resourcesBefore) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(held(), 'threads, sockets and processes left').to.deep.equal(resourcesBefore);
      expect(pids.filter(processAlive), 'child processes left').to.deep.equal([]);
    });
  }
});
