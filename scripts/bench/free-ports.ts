/*
 * free-ports.ts — loopback ports nobody listens on, for PostgreSQL servers to take.
 *
 * The kernel picks a free ephemeral port when we listen on port 0; holding every listener
 * open until all are picked makes the ports distinct, and closing them hands them over. A
 * server started right afterwards gets the port unless something else took it in between,
 * which its start then reports.
 */
import { createServer, type Server } from 'node:net';

export const LOOPBACK = '127.0.0.1';

function listenOnAnyPort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve(server));
  });
}

export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOnAnyPort());
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error(`listening on ${LOOPBACK}:0 gave no port`);
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}
