import crypto from 'node:crypto';
import WebSocket from 'ws';
import { privateKeyFromSeed } from '../../../src/engine/signing.js';
import { authMessage, decodeServerFrame, encodeFrame, type ChallengeFrame, type ClientFrame, type ServerFrame } from '../../../src/protocol/index.js';

/**
 * A bare protocol client for server tests: raw frames over a real socket, so tests can send
 * exactly what they want (bad frames included) and see every frame the server sends.
 */
export class RawClient {
  readonly frames: ServerFrame[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: Array<() => void> = [];
  private nextId = 1;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      this.frames.push(decodeServerFrame(new Uint8Array(data)));
      this.wake();
    });
    socket.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  static async open(url: string, tls?: { ca: Buffer; servername: string }): Promise<RawClient> {
    const socket = new WebSocket(url, tls);
    const client = new RawClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return client;
  }

  /** Open, answer the challenge with `secretKey`, and wait for welcome. */
  static async authenticated(url: string, clientId: string, secretKey: Uint8Array, tls?: { ca: Buffer; servername: string }): Promise<RawClient> {
    const client = await RawClient.open(url, tls);
    const challenge = (await client.next((f) => f.t === 'challenge')) as ChallengeFrame;
    client.send({ t: 'hello', id: client.id(), version: 1, clientId, signature: signChallenge(challenge, secretKey) });
    const reply = await client.next((f) => f.t === 'welcome' || f.t === 'error');
    if (reply.t !== 'welcome') throw new Error(`not welcomed: ${JSON.stringify(reply)}`);
    return client;
  }

  id(): number {
    return this.nextId++;
  }

  send(frame: ClientFrame): void {
    this.socket.send(encodeFrame(frame));
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.socket.send(bytes);
  }

  /** Send a request and wait for the frame answering it (same id). */
  async request(frame: ClientFrame & { id: number }): Promise<ServerFrame> {
    this.send(frame);
    return this.next((f) => 'id' in f && f.id === frame.id);
  }

  /** The first frame (not yet taken) matching `match`; frames before it stay for later calls. */
  async next(match: (frame: ServerFrame) => boolean, timeoutMs = 5000): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (this.closed) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) before the frame came`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; have ${JSON.stringify(this.frames.map((f) => f.t))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket did not close');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closed;
  }

  close(): void {
    this.socket.close();
  }

  private wake(): void {
    const waiters = this.waiters.splice(0);
    for (const wake of waiters) wake();
  }
}

export function signChallenge(challenge: ChallengeFrame, secretKey: Uint8Array): Uint8Array {
  return new Uint8Array(crypto.sign(null, authMessage(challenge.serverId, challenge.connectionId, challenge.nonce), privateKeyFromSeed(secretKey)));
}
