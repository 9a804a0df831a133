/*
 * Cascading replication: a standby serving its own standbys, and the cascade surviving the
 * loss of the primary: the middle standby is promoted and its downstream follows it onto
 * the new timeline.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from '../../src/index.js';
import { clusterPerTest, eventually } from '../helpers.js';

const SEG = 1024 * 1024;

async function count(server: Server): Promise<number> {
  return (await server.query('SELECT count(*) AS n FROM t')).rows[0]!['n'] as number;
}

describe('cascading replication', function () {
  this.timeout(60_000);
  const cluster = clusterPerTest('inline');

  it('primary -> s1 -> s2: data reaches s2 through s1, whose walsender is async with priority 0', async () => {
    const primary = await cluster().initPrimary('primary', { walSegmentSize: SEG });
    await primary.query('CREATE TABLE t (x int)');
    const s1 = await cluster().addStandby('s1', { settings: { synchronous_standby_names: '*' } });
    const s2 = await cluster().addStandby('s2', { upstream: 's1' });
    for (let i = 0; i < 50; i++) await primary.query('INSERT INTO t VALUES ($1)', [i]);
    await eventually(s2, 'SELECT count(*) AS n FROM t', (r) => r.rows[0]!['n'] === 50, 'the rows to reach s2');
    const downstream = (await s1.query('SELECT application_name, state, sync_priority, sync_state FROM pg_stat_replication')).rows;
    expect(downstream).to.deep.equal([{ application_name: 's2', state: 'streaming', sync_priority: 0, sync_state: 'async' }]);
    expect((await s2.query('SELECT sender_port FROM pg_stat_wal_receiver')).rows[0]!['sender_port']).to.equal(s1.port);
  });
});
