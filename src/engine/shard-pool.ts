import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { Piscina, type PiscinaTask } from 'piscina';
import { EngineError, type EngineErrorJSON } from './errors.js';
import type { DeliveryMessage, OpenResult, ShardConfig, ShardTask } from './shard-messages.js';
import type { WorkProgress } from '../observability/work-progress.js';

/** A task as the engine writes it: the pool adds shard, epoch and sequence number. */
export type ShardTaskBody = ShardTask extends infer T ? (T extends ShardTask ? Omit<T, 'shard' | 'epoch' | 'seq'> : never) : never;

export interface ShardPoolOptions {
  workers: number;
  shards: number;
  config: ShardConfig;
  onDeliveries: (message: DeliveryMessage) => void;
  onWorkerLog: (shard: number, level: string, message: string) => void;
  /** Progress of long work in a shard (recovery, replays). */
  onWorkProgress: (progress: WorkProgress) => void;
  /** A shard is being opened (again): work reported by an earlier incarnation is over. */
  onShardOpening: (shard: number) => void;
  /** A shard was opened again in a new worker after its worker died (live consumers must re-attach). */
  onShardReopened: (shard: number) => void;
  onShardReopenFailed: (shard: number, error: unknown) => void;
}

interface ShardRoute {
  epoch: number;
  seq: number;
  port: MessagePort | null;
  /** Settles when the shard's current incarnation is open. */
  opened: Promise<OpenResult>;
}

/** Where the compiled worker entry is: beside this file in dist/, or in dist/ when running from source. */
function workerEntry(): string {
  const here = fileURLToPath(import.meta.url);
  const compiled = path.resolve(path.dirname(here), '../../workers/shard-worker.js');
  if (!here.endsWith('.ts') && existsSync(compiled)) return compiled;
  const root = path.resolve(path.dirname(here), '../..');
  return path.join(root, 'dist', 'workers', 'shard-worker.js');
}

/**
 * The shard workers: a piscina pool whose load balancer sends every task of a shard to the worker
 * that owns the shard, so each shard (and every event type hashed to it) is handled by one thread in
 * order. Ownership is by worker thread id and moves only when the owner dies; the shard is then
 * opened again in a live worker under a new epoch, and recovers from disk there.
 */
export class ShardPool {
  private readonly piscina: Piscina;
  private readonly owners = new Map<number, number>();
  private readonly routes: ShardRoute[] = [];
  private closing = false;

  constructor(private readonly options: ShardPoolOptions) {
    this.piscina = new Piscina({
      filename: workerEntry(),
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Infinity,
      // Shards keep timers and fsyncs running between tasks: workers must not block while idle.
      atomics: 'disabled',
      // A task handed back by the balancer keeps its place at the head of the queue.
      stricterFIFO: true,
      concurrentTasksPerWorker: 1_000_000,
      loadBalancer: (task, workers) => this.route(task, workers),
    });
    // The destroyed worker's own id is no longer readable (its thread has exited): find dead owners
    // by the threads still alive instead.
    this.piscina.on('workerDestroy', () => this.onWorkerGone());
    this.piscina.on('error', (error: unknown) => this.options.onWorkerLog(-1, 'error', error instanceof Error ? error.message : String(error)));
  }

  /** Open every shard. */
  async start(): Promise<OpenResult[]> {
    for (let shard = 0; shard < this.options.shards; shard++) {
      this.routes.push({ epoch: 0, seq: 0, port: null, opened: Promise.resolve(null as never) });
      this.open(shard);
    }
    return Promise.all(this.routes.map((route) => route.opened));
  }

  get shardCount(): number {
    return this.options.shards;
  }

  /** Run a task on the shard's owner, in the shard's order. Rejections are EngineErrors. */
  run<T>(shard: number, body: ShardTaskBody, transferList?: ReadonlyArray<MessagePort | ArrayBuffer>): Promise<T> {
    if (this.closing && body.op !== 'close') {
      return Promise.reject(new EngineError('ENGINE_CLOSED', 'the engine is closing'));
    }
    const route = this.routes[shard]!;
    const task = { ...body, shard, epoch: route.epoch, seq: route.seq++, [Piscina.queueOptionsSymbol]: { shard } };
    const options = transferList ? { transferList: transferList as Array<MessagePort | ArrayBuffer> } : {};
    return (this.piscina.run(task, options) as Promise<T>).catch((error: unknown) => {
      throw toEngineError(error, shard);
    });
  }

  /** Thread ids owning each shard (for status and tests). */
  ownerOf(shard: number): number | undefined {
    return this.owners.get(shard);
  }

  get threads(): Worker[] {
    return this.piscina.threads;
  }

  /** Resolves once the shard's current incarnation is open. */
  whenOpen(shard: number): Promise<OpenResult> {
    return this.routes[shard]!.opened;
  }

  /** Stop the workers without closing shards (an open that failed). */
  async destroy(): Promise<void> {
    this.closing = true;
    for (const route of this.routes) route.port?.close();
    await this.piscina.destroy();
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled(this.routes.map((_, shard) => this.run(shard, { op: 'close' })));
    for (const route of this.routes) route.port?.close();
    await this.piscina.destroy();
  }

  private open(shard: number): void {
    const route = this.routes[shard]!;
    route.port?.close();
    const channel = new MessageChannel();
    this.options.onShardOpening(shard);
    channel.port1.on('message', (message: DeliveryMessage & { log?: { level: string; message: string }; progress?: WorkProgress }) => {
      if (message.epoch !== route.epoch) return; // a dead incarnation's leftovers
      if (message.log) this.options.onWorkerLog(shard, message.log.level, message.log.message);
      else if (message.progress) this.options.onWorkProgress(message.progress);
      else this.options.onDeliveries(message);
    });
    channel.port1.unref();
    route.port = channel.port1;
    route.opened = this.run<OpenResult>(shard, { op: 'open', config: this.options.config, port: channel.port2 }, [channel.port2]).then((result) => {
      // The port's copy of this report may come later: the board keeps the first.
      if (result.recoveryProgress) this.options.onWorkProgress(result.recoveryProgress);
      return result;
    });
    route.opened.catch(() => {});
  }

  /** The balancer: the shard's owner if alive; otherwise the live worker owning the fewest shards. */
  private route<W extends { id: number; terminating: boolean; destroyed: boolean }>(task: PiscinaTask, workers: W[]): W | null {
    if (workers.length < this.options.workers) return null; // not all workers exist yet: requeue
    const shard = (task as unknown as Record<symbol, { shard?: number } | undefined>)[Piscina.queueOptionsSymbol]?.shard;
    const live = workers.filter((w) => !w.terminating && !w.destroyed);
    if (live.length === 0) return null;
    if (shard === undefined) return live[0]!;
    const ownerId = this.owners.get(shard);
    const owner = ownerId === undefined ? undefined : live.find((w) => w.id === ownerId);
    if (owner) return owner;
    const load = new Map(live.map((w) => [w.id, 0]));
    for (const id of this.owners.values()) if (load.has(id)) load.set(id, load.get(id)! + 1);
    const chosen = live.reduce((best, w) => (load.get(w.id)! < load.get(best.id)! ? w : best));
    this.owners.set(shard, chosen.id);
    return chosen;
  }

  private onWorkerGone(): void {
    if (this.closing) return;
    const live = new Set(this.piscina.threads.map((thread) => thread.threadId).filter((id) => id >= 0));
    for (const [shard, owner] of [...this.owners]) {
      if (live.has(owner)) continue;
      this.owners.delete(shard);
      const route = this.routes[shard]!;
      route.epoch++;
      route.seq = 0;
      this.open(shard);
      route.opened.then(
        () => this.options.onShardReopened(shard),
        (error) => this.options.onShardReopenFailed(shard, error),
      );
    }
  }
}

/** Map what a worker threw (a typed error as plain JSON, or a dying thread) to an EngineError. */
function toEngineError(error: unknown, shard: number): EngineError {
  if (error instanceof EngineError) return error;
  const json = error as Partial<EngineErrorJSON> | null;
  if (json && typeof json === 'object' && typeof json.code === 'string' && typeof json.message === 'string' && !(error instanceof Error)) {
    return EngineError.fromJSON(json as EngineErrorJSON);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new EngineError('SHARD_UNAVAILABLE', `shard ${shard} is unavailable (${message}); retry`, { retryable: true, cause: error });
}
