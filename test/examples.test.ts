/*
 * The runnable examples of docs/api.md (examples/api/*.ts): each one runs to the end and
 * prints what the document says it prints. An example that stops working fails here.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Example = { main: (dir: string, print: (line: string) => void) => Promise<void> };

async function run(name: string): Promise<string[]> {
  const example = (await import(`../examples/api/${name}.js`)) as Example;
  const dir = mkdtempSync(join(tmpdir(), `walship-example-${name}-`));
  const lines: string[] = [];
  try {
    await example.main(dir, (line) => lines.push(line));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}

describe('docs/api.md examples', function () {
  this.timeout(60_000);

  it('streaming.ts: the row reaches the standby; both sides\' views', async () => {
    const lines = await run('streaming');
    expect(lines[0]).to.equal('[{"id":1,"v":"one"}]');
    expect(lines[1]).to.equal('[{"application_name":"standby","state":"streaming","sync_state":"async"}]');
    expect(lines[2]).to.match(/^\[\{"status":"streaming","sender_port":\d+\}\]$/);
  });

  it('sync-commit.ts: a cancelled wait for the synchronous standby', async () => {
    expect(await run('sync-commit')).to.deep.equal(['canceling wait for synchronous replication due to user request']);
  });

  it('failover.ts: promoted, fenced, rewound, with what was lost', async () => {
    const lines = await run('failover');
    expect(lines[0]).to.equal('promoted: true');
    expect(lines[1]).to.match(/^old primary: cannot execute INSERT in a read-only transaction; Timeline 2 exists on the server at port \d+/);
    expect(lines[2]).to.match(/^diverged at [0-9A-F]+\/[0-9A-F]+; discarded 1 transaction\(s\), acknowledged: true$/);
    expect(lines[3]).to.equal('old primary in recovery now: true');
  });

  it('conflicts.ts: the standby session in replay\'s way is ended', async () => {
    expect(await run('conflicts')).to.deep.equal(['FATAL: terminating connection due to conflict with recovery (User was holding a relation lock for too long.)']);
  });
});
