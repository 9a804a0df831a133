/*
 * Settings by PostgreSQL name: units, ranges, enums, booleans, contexts, the two
 * configuration files, SET / SET LOCAL / SHOW / RESET, with PostgreSQL's error texts.
 */
import { expect } from 'chai';
import { PgError } from '../../src/errors.js';
import { parseConfFile, renderAutoConf } from '../../src/config/conffile.js';
import { checkValue, formatValue, parseBool, requireSetting } from '../../src/config/settings.js';
import { ServerConfig, SessionConfig } from '../../src/config/store.js';

function pgError(fn: () => unknown): PgError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PgError) return err;
    throw err;
  }
  throw new Error('expected a PgError');
}

const check = (name: string, text: string) => checkValue(requireSetting(name), text);
const show = (name: string, value: number | string | boolean) => formatValue(requireSetting(name), value);

describe('settings', () => {
  it('reads numbers with units into the base unit', () => {
    expect(check('wal_writer_delay', '10ms')).to.equal(10);
    expect(check('wal_writer_delay', '1s')).to.equal(1000);
    expect(check('wal_writer_delay', '1.5s')).to.equal(1500);
    expect(check('wal_writer_delay', '250')).to.equal(250);
    expect(check('checkpoint_timeout', '5min')).to.equal(300);
    expect(check('checkpoint_timeout', '1h')).to.equal(3600);
    expect(check('max_wal_size', '2GB')).to.equal(2048);
    expect(check('max_wal_size', '64 MB')).to.equal(64);
    expect(check('wal_writer_flush_after', '1MB')).to.equal(1024 * 1024);
  });

  it('prints values as SHOW does', () => {
    expect(show('wal_writer_delay', 200)).to.equal('200ms');
    expect(show('wal_writer_delay', 1000)).to.equal('1s');
    expect(show('checkpoint_timeout', 300)).to.equal('5min');
    expect(show('max_wal_size', 1024)).to.equal('1GB');
    expect(show('wal_segment_size', 16 * 1024 * 1024)).to.equal('16MB');
    expect(show('statement_timeout', 0)).to.equal('0');
    expect(show('max_slot_wal_keep_size', -1)).to.equal('-1');
    expect(show('fsync', true)).to.equal('on');
    expect(show('synchronous_commit', 'remote_apply')).to.equal('remote_apply');
  });

  it('refuses bad values with PostgreSQL\'s errors', () => {
    const unit = pgError(() => check('wal_writer_delay', '10 parsecs'));
    expect(unit.code).to.equal('22023');
    expect(unit.message).to.equal('invalid value for parameter "wal_writer_delay": "10 parsecs"');
    expect(unit.hint).to.equal('Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".');
    expect(pgError(() => check('wal_writer_delay', '20s')).message).to.equal('20000 ms is outside the valid range for parameter "wal_writer_delay" (1 ms .. 10000 ms)');
    expect(pgError(() => check('max_wal_size', '10XB')).hint).to.equal('Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".');
    const level = pgError(() => check('synchronous_commit', 'sometimes'));
    expect(level.message).to.equal('invalid value for parameter "synchronous_commit": "sometimes"');
    expect(level.hint).to.equal('Available values: local, remote_write, remote_apply, on, off.');
    expect(pgError(() => check('fsync', 'maybe')).message).to.equal('parameter "fsync" requires a Boolean value');
    const unknown = pgError(() => requireSetting('wal_writer_dealy'));
    expect([unknown.code, unknown.message]).to.deep.equal(['42704', 'unrecognized configuration parameter "wal_writer_dealy"']);
  });

  it('reads booleans as PostgreSQL does', () => {
    expect(['on', 'true', 'yes', '1', 't', 'y', 'TRUE'].map(parseBool)).to.deep.equal(Array(7).fill(true));
    expect(['off', 'false', 'no', '0', 'f', 'n', 'of'].map(parseBool)).to.deep.equal(Array(7).fill(false));
    expect(['o', '', 'maybe', '2'].map(parseBool)).to.deep.equal([null, null, null, null]);
  });
});

describe('configuration files', () => {
  it('parses postgresql.conf syntax', () => {
    const text = [
      '# a comment',
      "wal_writer_delay = '10ms'   # trailing comment",
      'synchronous_commit off',
      "primary_conninfo = 'host=127.0.0.1 port=5432 application_name=''s1'''",
      'max_wal_size=2GB',
      '',
    ].join('\n');
    expect(parseConfFile(text, 'postgresql.conf')).to.deep.equal([
      { name: 'wal_writer_delay', value: '10ms', line: 2 },
      { name: 'synchronous_commit', value: 'off', line: 3 },
      { name: 'primary_conninfo', value: "host=127.0.0.1 port=5432 application_name='s1'", line: 4 },
      { name: 'max_wal_size', value: '2GB', line: 5 },
    ]);
  });

  it('reports syntax errors with file, line and token', () => {
    expect(pgError(() => parseConfFile("fsync = on\nwal_level = = replica\n", '/d/postgresql.conf')).message)
      .to.equal('syntax error in file "/d/postgresql.conf" line 2, near token "="');
    expect(pgError(() => parseConfFile("primary_conninfo = 'host=x\n", '/d/postgresql.conf')).message)
      .to.equal('syntax error in file "/d/postgresql.conf" line 1, near end of line');
  });

  it('writes postgresql.auto.conf as ALTER SYSTEM does, and reads it back', () => {
    const text = renderAutoConf(new Map([['synchronous_standby_names', "FIRST 1 ('s1', s2)"], ['wal_keep_size', '1GB']]));
    expect(text.split('\n')[0]).to.equal('# Do not edit this file manually!');
    expect(parseConfFile(text, 'postgresql.auto.conf').map((e) => [e.name, e.value])).to.deep.equal([
      ['synchronous_standby_names', "FIRST 1 ('s1', s2)"], ['wal_keep_size', '1GB'],
    ]);
  });

  it('layers defaults, postgresql.conf, postgresql.auto.conf and start options', () => {
    const config = new ServerConfig({ max_connections: '50' });
    config.load([
      { path: 'postgresql.conf', text: "wal_writer_delay = 50ms\nmax_wal_size = 2GB\n" },
      { path: 'postgresql.auto.conf', text: "wal_writer_delay = '20ms'\n" },
    ]);
    expect(config.get('wal_writer_delay')).to.equal(20);
    expect(config.get('max_wal_size')).to.equal(2048);
    expect(config.get('max_connections')).to.equal(50);
    expect(config.get('checkpoint_timeout')).to.equal(300);
    expect(config.source('wal_writer_delay')).to.equal('configuration file');
  });

  it('refuses to start on a bad entry, naming the file and line', () => {
    const config = new ServerConfig();
    const err = pgError(() => config.load([{ path: '/d/postgresql.conf', text: 'fsync = on\nwal_writer_delay = forever\n' }]));
    expect(err.severity).to.equal('FATAL');
    expect(err.message).to.equal('invalid value for parameter "wal_writer_delay": "forever" (in file "/d/postgresql.conf" line 2)');
  });

  it('at reload applies good entries, reports bad ones and keeps restart-only settings', () => {
    const config = new ServerConfig();
    config.load([{ path: 'postgresql.conf', text: 'max_connections = 100\n' }]);
    const report = config.load([{ path: 'postgresql.conf', text: 'max_connections = 200\nwal_writer_delay = 30ms\nhot_standby_feedback = perhaps\n' }]);
    expect(report.changed).to.deep.equal(['wal_writer_delay']);
    expect(report.problems).to.deep.equal([
      'parameter "hot_standby_feedback" requires a Boolean value (in file "postgresql.conf" line 3)',
      'parameter "max_connections" cannot be changed without restarting the server',
    ]);
    expect(config.get('max_connections')).to.equal(100);
    expect(config.get('wal_writer_delay')).to.equal(30);
  });
});

describe('session settings', () => {
  it('SET, SET LOCAL, SHOW and RESET', () => {
    const server = new ServerConfig();
    server.load([]);
    const session = new SessionConfig(server);
    expect(session.show('synchronous_commit')).to.equal('on');
    session.set('synchronous_commit', 'off', false);
    expect(session.show('synchronous_commit')).to.equal('off');
    session.set('synchronous_commit', 'remote_apply', true);
    expect(session.show('synchronous_commit')).to.equal('remote_apply');
    session.endTransaction();
    expect(session.show('synchronous_commit')).to.equal('off');
    session.reset('synchronous_commit');
    expect(session.show('synchronous_commit')).to.equal('on');
    expect(session.show('Application_Name')).to.equal('');
  });

  it('refuses SET of settings that need a reload or a restart', () => {
    const server = new ServerConfig();
    server.load([]);
    const session = new SessionConfig(server);
    const reload = pgError(() => session.set('wal_writer_delay', '10ms', false));
    expect([reload.code, reload.message]).to.deep.equal(['55P02', 'parameter "wal_writer_delay" cannot be changed now']);
    expect(pgError(() => session.set('max_connections', '5', false)).message).to.equal('parameter "max_connections" cannot be changed without restarting the server');
    expect(pgError(() => session.set('wal_segment_size', '1MB', false)).message).to.equal('parameter "wal_segment_size" cannot be changed');
  });
});
