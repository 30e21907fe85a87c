import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

/**
 * A TCP relay between clients and a server on loopback, that a test can cut (every current
 * connection dropped, new ones still accepted) and that can hold one direction's bytes back, to
 * drop a connection at a chosen moment of a request's life.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  /** While true, bytes from the server are kept from the clients (and lost at the next cut). */
  holdReplies = false;
  /** While true, bytes from the clients are kept from the server (and lost at the next cut). */
  holdRequests = false;
  private readonly held = new Map<net.Socket, Buffer[]>();
  connections = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | null = null;
    const server = net.createServer((client) => proxy!.relay(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Drop every current connection (both sides see a reset); held bytes are lost. */
  cut(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
    this.held.clear();
    this.holdReplies = false;
    this.holdRequests = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket, targetPort: number): void {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    this.connections++;
    const forward = (from: net.Socket, to: net.Socket, held: () => boolean): void => {
      from.on('data', (chunk: Buffer) => {
        if (held()) {
          const kept = this.held.get(from) ?? [];
          kept.push(chunk);
          this.held.set(from, kept);
        } else {
          to.write(chunk);
        }
      });
    };
    forward(client, upstream, () => this.holdRequests);
    forward(upstream, client, () => this.holdReplies);
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  }
}
