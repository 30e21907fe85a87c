import net from 'node:net';
import { BenchError } from './bench-error.js';

/**
 * A TCP port free on 127.0.0.1 right now, for servers that cannot listen on port 0 and report the
 * port they got (nats-server, redis-server). Another process could take it before the server binds;
 * the server then fails to start and says so, which the caller reports.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new BenchError('NO_PORT', 'no port from listen(0)'))));
    });
  });
}
