/*
 * raw-echo.ts — the raw mechanisms the actor round trips are compared against: an echo over
 * a bare MessagePort in a worker thread, and an echo over a bare TCP socket in a child
 * process. No framing, no codec, no actors: the floor.
 */
import { createServer } from 'node:net';
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';

if (!isMainThread) {
  const port = (workerData as { port: MessagePort }).port;
  port.on('message', (m: unknown) => port.postMessage(m));
  parentPort!.postMessage('ready');
} else if (process.argv[2] === 'tcp') {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (chunk) => socket.write(chunk));
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    process.stdout.write(`${address.port}\n`);
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
