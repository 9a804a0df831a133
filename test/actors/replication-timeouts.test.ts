/*
 * The walsender and the walreceiver alone, each driven by the test playing the other side:
 * keepalives, status intervals and the two timeouts, with PostgreSQL's log lines.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WALRECEIVER, type WalReceiverArgs } from '../../src/actors/walreceiver.js';
import { WALSENDER, type WalSenderArgs } from '../../src/actors/walsender.js';
import { DEFAULT_HBA_CONF, parseHba } from '../../src/replication/hba.js';
import type { ActorRef, Message } from '../../src/runtime/actor.js';
import { Kernel, type Inbox } from '../../src/runtime/kernel.js';
import { FAKE_DIRECTORY, FAKE_SHMEM, FAKE_WALWRITER, SINK } from '../fixtures/replication-peers.js';
import { until } from '../helpers.js';

const SEG = 1024 * 1024;

/** The next message of `type`, the ones before it kept in `seen`. */
async function next<M extends Message>(inbox: Inbox, type: string, seen: Message[] = []): Promise<M> {
  for (;;) {
    const msg = await inbox.next(5_000);
    if (msg.type === type) return msg as M;
    seen.push(msg);
  }
}

describe('replication timeouts', function () {
  this.timeout(20_000);
  let dir: string;
  let kernel: Kernel;
  let logs: string[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'walship-timeouts-'));
    mkdirSync(join(dir, 'pg_wal'));
    kernel = new Kernel();
    logs = [];
    kernel.onEvent((e) => {
      if (e.kind === 'log') logs.push(`${e.level}: ${e.text}`);
    });
  });
  afterEach(async () => {
    await kernel.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a walsender asks a silent standby for a reply at half wal_sender_timeout, then drops it', async () => {
    const client = kernel.inbox('standby');
    const args: WalSenderArgs = {
      client: client.ref, connection: 7, user: 'postgres', applicationName: 's1', address: '127.0.0.1', pid: 1, dataDir: dir,
      shmem: kernel.spawn({ name: 'shmem', behaviour: FAKE_SHMEM }),
      walwriter: kernel.spawn({ name: 'walwriter', behaviour: FAKE_WALWRITER, args: { flushed: SEG } }),
      checkpointer: kernel.spawn({ name: 'checkpointer', behaviour: SINK }),
      hba: parseHba(DEFAULT_HBA_CONF, 'pg_hba.conf'), walSenderTimeoutMs: 400, systemIdentifier: '1', timeline: 1, segmentSize: SEG,
      directory: null, clientServer: null, serverPort: null,
    };
    const walsender = kernel.spawn({ name: 'walsender', behaviour: WALSENDER, args });
    const ok = await next<Message & { connection: number }>(client, 'AuthOk');
    expect(ok.connection).to.equal(7);
    kernel.send(walsender, { type: 'StartReplication', slot: null, startLsn: SEG, timeline: 1 });
    await next(client, 'CopyBoth');
    let keepalive: Message & { replyRequested: boolean };
    do keepalive = await next(client, 'PrimaryKeepalive');
    while (!keepalive.replyRequested);
    expect(await kernel.whenExited(walsender)).to.deep.equal({ kind: 'normal' });
    expect(logs).to.include('info: terminating walsender process due to replication timeout');
  });

  it('a walreceiver reports every wal_receiver_status_interval, drops a silent primary at wal_receiver_timeout, and reconnects', async () => {
    const primary = kernel.inbox('primary');
    const args: WalReceiverArgs = {
      conninfo: 'host=127.0.0.1 port=7777 user=postgres', slotName: '', startLsn: SEG, timeline: 1, systemIdentifier: '1',
      segmentSize: SEG, dataDir: dir, startup: kernel.spawn({ name: 'startup', behaviour: SINK }), shmem: kernel.spawn({ name: 'shmem', behaviour: SINK }),
      directory: kernel.spawn({ name: 'directory', behaviour: FAKE_DIRECTORY, args: { postmaster: primary.ref } }), ownServer: null,
      defaultApplicationName: 'walreceiver', pid: 2, statusIntervalMs: 100, receiverTimeoutMs: 600, retryIntervalMs: 50,
    };
    kernel.spawn({ name: 'walreceiver', behaviour: WALRECEIVER, args });
    const connect = await next<Message & { connection: number; replyTo: ActorRef }>(primary, 'ReplConnect');
    const tell = (msg: Message): void => void kernel.send(connect.replyTo, { ...msg, connection: connect.connection });
    tell({ type: 'AuthOk', serverFinal: null, walsender: primary.ref } as Message);
    await next(primary, 'IdentifySystem');
    tell({ type: 'SystemIdentified', systemId: '1', timeline: 1, xlogpos: SEG, walSegmentSize: SEG } as Message);
    const start = await next<Message & { startLsn: number }>(primary, 'StartReplication');
    expect(start.startLsn).to.equal(SEG);
    tell({ type: 'CopyBoth' });
    await until(() => logs.includes('info: started streaming WAL from primary at 0/100000 on timeline 1'), 'streaming to start');
    // Silent primary: status updates keep coming at the interval, then the connection is dropped.
    const updates = [await next<Message & { replyTime: number }>(primary, 'StandbyStatusUpdate'), await next<Message & { replyTime: number }>(primary, 'StandbyStatusUpdate')];
    expect(updates[1]!.replyTime - updates[0]!.replyTime).to.be.at.least(90);
    await next(primary, 'ReplDisconnect');
    expect(logs).to.include('fatal: terminating walreceiver due to timeout');
    const again = await next<Message & { connection: number }>(primary, 'ReplConnect');
    expect(again.connection).to.equal(connect.connection + 1);
  });
});
