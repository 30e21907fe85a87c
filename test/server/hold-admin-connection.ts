/**
 * Test helper: leaves an HTTP request half-received on a server, so the server has a connection
 * that is not idle. Sends one complete request plus the start of a second in a single write; once
 * the first response arrives, the server has read (and begun parsing) the partial second one.
 */
import net from 'node:net';

export interface HeldConnection {
  socket: net.Socket;
  closed: Promise<void>;
}

export async function holdHalfReceivedRequest(port: number, path = '/health'): Promise<HeldConnection> {
  const socket = net.connect(port, '127.0.0.1');
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined); // the server cuts this connection off on purpose
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const firstResponse = new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\n\r\nGET ${path} HTTP/1.1\r\nHost: test\r\n`);
  const response = await firstResponse;
  if (!response.startsWith('HTTP/1.1 ')) throw new Error(`unexpected response: ${response.slice(0, 40)}`);
  return { socket, closed };
}
