import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** Partitioned: bytes are dropped both ways and the server's close does not reach the client. */
  partitioned: boolean;
}

/**
 * A TCP relay between clients and a server on loopback, that a test can cut (every current
 * connection dropped, new ones still accepted), partition (current connections go silent without
 * closing), or make hold one direction's bytes back, to drop a connection at a chosen moment of a
 * request's life.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  /** While true, bytes from the server are kept from the clients (and lost at the next cut). */
  holdReplies = false;
  /** While true, bytes from the clients are kept from the server (and lost at the next cut). */
  holdRequests = false;
  /** Connections accepted so far. */
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

  /** Drop every current connection (both sides see it close); held bytes are lost. */
  cut(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
    this.holdReplies = false;
    this.holdRequests = false;
  }

  /** Current connections go silent both ways and stay open towards the client; new ones work. */
  partition(): void {
    for (const pair of this.pairs) pair.partitioned = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket, targetPort: number): void {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair: Pair = { client, upstream, partitioned: false };
    this.pairs.add(pair);
    this.connections++;
    client.on('data', (chunk: Buffer) => {
      if (!pair.partitioned && !this.holdRequests) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.partitioned && !this.holdReplies) client.write(chunk);
    });
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', () => undefined).on('close', () => {
      if (!pair.partitioned) end();
    });
  }
}
