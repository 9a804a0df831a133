/*
 * Connection strings as libpq reads them (primary_conninfo).
 */
import { expect } from 'chai';
import { parseConninfo, renderConninfo } from '../../src/config/conninfo.js';
import { PgError } from '../../src/errors.js';

function error(text: string): PgError {
  try {
    parseConninfo(text);
  } catch (err) {
    if (err instanceof PgError) return err;
    throw err;
  }
  throw new Error('expected a PgError');
}

describe('conninfo', () => {
  it('reads keywords, spaces around =, quotes and escapes', () => {
    expect(parseConninfo("host=127.0.0.1 port = 5433  user=repl application_name='standby one' password='it\\'s'"))
      .to.deep.equal({ host: '127.0.0.1', port: '5433', user: 'repl', application_name: 'standby one', password: "it's" });
    expect(parseConninfo('')).to.deep.equal({});
    expect(parseConninfo("dbname=''")).to.deep.equal({ dbname: '' });
  });

  it('refuses malformed strings with libpq\'s messages', () => {
    expect(error('host').message).to.equal('missing "=" after "host" in connection info string');
    expect(error("host='x").message).to.equal('unterminated quoted string in connection info string');
    expect(error('hots=x').message).to.equal('invalid connection option "hots"');
  });

  it('renders strings that read back the same', () => {
    const info = { host: '127.0.0.1', port: '40000', application_name: "s1 'quoted' \\ name", password: '' };
    expect(parseConninfo(renderConninfo(info))).to.deep.equal(info);
    expect(renderConninfo({ host: 'h', port: '1' })).to.equal('host=h port=1');
  });
});
