/*
 * `walship demo`, the README's main job, run as the suite's own check: every step of the
 * failover story it tells must check out.
 */
import { expect } from 'chai';
import { runFailoverDemo } from '../../scripts/failover-demo.js';

describe('walship demo', function () {
  this.timeout(120_000);

  it('runs the failover demo with every step checked out', async () => {
    const lines: string[] = [];
    const { ok } = await runFailoverDemo({ placement: 'inline', commitsPerLevel: 20 }, (line) => lines.push(line));
    const failed = lines.filter((l) => l.startsWith('FAIL'));
    expect(failed, lines.join('\n')).to.deep.equal([]);
    expect(ok).to.equal(true);
    expect(lines.filter((l) => l.startsWith('ok')).length).to.be.greaterThan(6);
  });
});
