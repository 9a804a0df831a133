/*
 * Views and functions the server serves (SystemHooks), through a fake server: views read
 * like tables, functions answer in select lists and in FROM, records print as PostgreSQL's
 * record text, and a function with side effects runs once per statement.
 */
import { expect } from 'chai';
import { PgError } from '../../src/errors.js';
import type { SystemHooks } from '../../src/sql/engine.js';
import type { Datum } from '../../src/storage/heap.js';
import { Harness, seen } from './harness.js';

const NO_FUNCTION_HINT = 'No function matches the given name and argument types. You might need to add explicit type casts.';
const SLOT_COLUMNS = [{ name: 'slot_name', type: 'text' }, { name: 'lsn', type: 'pg_lsn' }] as const;

/** A server with two standbys and physical replication slots, counting what it is asked. */
class FakeServer implements SystemHooks {
  readonly slots = new Map<string, string | null>();
  readonly asked: string[] = [];

  view(name: string): ReturnType<SystemHooks['view']> {
    this.asked.push(`view ${name}`);
    switch (name) {
      case 'pg_stat_replication':
        return {
          columns: [{ name: 'application_name', type: 'text' }, { name: 'state', type: 'text' }, { name: 'sent_lsn', type: 'pg_lsn' }, { name: 'write_lag', type: 'interval' }],
          rows: [['walreceiver_b', 'streaming', '0/3000148', '00:00:00.001234'], ['walreceiver_a', 'catchup', '0/3000000', null]],
        };
      case 'pg_replication_slots':
        return { columns: [{ name: 'slot_name', type: 'text' }, { name: 'restart_lsn', type: 'pg_lsn' }], rows: [...this.slots] };
      default:
        return undefined;
    }
  }

  call(name: string, args: readonly Datum[]): ReturnType<SystemHooks['call']> {
    this.asked.push(`${name}(${args.map(String).join(', ')})`);
    switch (name) {
      case 'pg_last_wal_receive_lsn': return { value: '0/3000148', type: 'pg_lsn' };
      case 'pg_last_wal_replay_lsn': return { value: null, type: 'pg_lsn' };
      case 'pg_create_physical_replication_slot': {
        const [slot, reserve] = args as [string, boolean | undefined];
        if (this.slots.has(slot)) throw new PgError({ code: '42710', message: `replication slot "${slot}" already exists` });
        const lsn = reserve === true ? '0/3000148' : null;
        this.slots.set(slot, lsn);
        return { columns: SLOT_COLUMNS, row: [slot, lsn] };
      }
      case 'pg_drop_replication_slot':
        this.slots.delete(args[0] as string);
        return { value: '', type: 'text' };
      case 'pg_test_record':
        return {
          columns: [{ name: 'a', type: 'text' }, { name: 'b', type: 'text' }, { name: 'c', type: 'text' }, { name: 'd', type: 'bool' }, { name: 'e', type: 'text' }, { name: 'f', type: 'timestamptz' }],
          row: ['two words', '', null, true, 'say "hi", \\o/', Date.UTC(2026, 0, 2, 3, 4, 5, 120)],
        };
      default:
        return undefined;
    }
  }
}

describe('views and functions served by the server', () => {
  let h: Harness;
  let server: FakeServer;
  beforeEach(() => {
    h = new Harness();
    server = new FakeServer();
    h.options = { system: server };
  });

  it('reads a server view like a table: columns, WHERE, ORDER BY, count(*)', () => {
    expect(h.rows('a', 'SELECT application_name, state FROM pg_stat_replication ORDER BY application_name')).to.deep.equal([
      { application_name: 'walreceiver_a', state: 'catchup' }, { application_name: 'walreceiver_b', state: 'streaming' },
    ]);
    expect(h.rows('a', "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")).to.deep.equal([{ count: 1 }]);
    const all = h.ok('a', 'SELECT * FROM pg_catalog.pg_stat_replication WHERE write_lag IS NOT NULL');
    expect(all.columns.map((c) => `${c.name} ${c.type}`)).to.deep.equal(['application_name text', 'state text', 'sent_lsn pg_lsn', 'write_lag interval']);
    expect(all.rows).to.deep.equal([{ application_name: 'walreceiver_b', state: 'streaming', sent_lsn: '0/3000148', write_lag: '00:00:00.001234' }]);
    expect(server.asked, 'once per statement, and only for pg_ names').to.deep.equal(['view pg_stat_replication', 'view pg_stat_replication', 'view pg_stat_replication']);
  });

  it('keeps tables and unknown names apart from the server\'s views', () => {
    h.ok('a', 'CREATE TABLE standbys (name text)');
    expect(h.rows('a', 'SELECT count(*) FROM standbys')).to.deep.equal([{ count: 0 }]);
    expect(server.asked, 'an ordinary table is never asked of the server').to.deep.equal([]);
    expect(seen(h.error('a', 'SELECT * FROM pg_stat_nothing'))).to.deep.equal({ code: '42P01', message: 'relation "pg_stat_nothing" does not exist' });
    h.options = {};
    expect(seen(h.error('a', 'SELECT * FROM pg_stat_replication'))).to.deep.equal({ code: '42P01', message: 'relation "pg_stat_replication" does not exist' });
  });

  it('evaluates server functions in the select list, with their types, and unknown ones fail with 42883', () => {
    const result = h.ok('a', 'SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn() AS replay, pg_is_in_recovery()');
    expect(result.rows).to.deep.equal([{ pg_last_wal_receive_lsn: '0/3000148', replay: null, pg_is_in_recovery: false }]);
    expect(result.columns).to.deep.equal([{ name: 'pg_last_wal_receive_lsn', type: 'pg_lsn' }, { name: 'replay', type: 'pg_lsn' }, { name: 'pg_is_in_recovery', type: 'bool' }]);
    expect(server.asked, 'walship\'s own functions are not asked of the server').to.deep.equal(['pg_last_wal_receive_lsn()', 'pg_last_wal_replay_lsn()']);
    expect(seen(h.error('a', 'SELECT no_such_function(1)'))).to.deep.equal({ code: '42883', message: 'function no_such_function(unknown) does not exist', hint: NO_FUNCTION_HINT });
  });

  it('prints a record answer as PostgreSQL\'s record text', () => {
    const reserved = h.ok('a', "SELECT pg_create_physical_replication_slot('s1', true)");
    expect(reserved.rows).to.deep.equal([{ pg_create_physical_replication_slot: '(s1,0/3000148)' }]);
    expect(reserved.columns).to.deep.equal([{ name: 'pg_create_physical_replication_slot', type: 'record' }]);
    expect(h.rows('a', "SELECT pg_create_physical_replication_slot('s2') AS slot")).to.deep.equal([{ slot: '(s2,)' }]);
    expect(h.rows('a', 'SELECT pg_test_record() AS r')).to.deep.equal([{ r: '("two words","",,t,"say ""hi"", \\\\o/","2026-01-02 03:04:05.12+00")' }]);
  });

  it('reads a function in FROM as a relation, record columns included', () => {
    expect(h.rows('a', "SELECT * FROM pg_create_physical_replication_slot('s1', true)")).to.deep.equal([{ slot_name: 's1', lsn: '0/3000148' }]);
    const renamed = h.ok('a', "SELECT name FROM pg_create_physical_replication_slot('s2') AS t(name, position) WHERE position IS NULL");
    expect(renamed.rows).to.deep.equal([{ name: 's2' }]);
    expect(h.rows('a', 'SELECT * FROM pg_last_wal_receive_lsn() AS received')).to.deep.equal([{ received: '0/3000148' }]);
    expect(h.rows('a', 'SELECT * FROM pg_is_in_recovery()')).to.deep.equal([{ pg_is_in_recovery: false }]);
    expect(seen(h.error('a', 'SELECT * FROM no_such_function()'))).to.deep.equal({ code: '42883', message: 'function no_such_function() does not exist', hint: NO_FUNCTION_HINT });
  });

  it('calls a function with side effects once per statement, however many rows ask, and passes its errors on', () => {
    expect(h.rows('a', "SELECT pg_create_physical_replication_slot('s1') AS slot FROM generate_series(1, 3)")).to.deep.equal([
      { slot: '(s1,)' }, { slot: '(s1,)' }, { slot: '(s1,)' },
    ]);
    expect(h.rows('a', "SELECT slot_name FROM pg_create_physical_replication_slot('s2') WHERE slot_name = 's2' ORDER BY slot_name")).to.deep.equal([{ slot_name: 's2' }]);
    expect(server.asked).to.deep.equal(['pg_create_physical_replication_slot(s1)', 'pg_create_physical_replication_slot(s2)']);
    expect(seen(h.error('a', "SELECT pg_create_physical_replication_slot('s1')"))).to.deep.equal({ code: '42710', message: 'replication slot "s1" already exists' });
    // One call per distinct argument: each slot is dropped once.
    server.asked.length = 0;
    expect(h.ok('a', 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots ORDER BY slot_name').rowCount).to.equal(2);
    expect(server.asked).to.deep.equal(['view pg_replication_slots', 'pg_drop_replication_slot(s1)', 'pg_drop_replication_slot(s2)']);
    expect(h.rows('a', 'SELECT count(*) FROM pg_replication_slots')).to.deep.equal([{ count: 0 }]);
  });
});
