import type { MessagePort } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { StorageError } from '../native-free-storage/index.js';
import { EngineError } from '../src/engine/errors.js';
import type { DeliveryMessage, ShardTask } from '../src/engine/shard-messages.js';
import { Shard } from '../src/engine/shard/shard.js';
import { TaskSequencer } from '../src/engine/shard/task-sequencer.js';
import type { WorkProgress } from '../src/observability/work-progress.js';

/**
 * Piscina entry of a shard worker. The engine's load balancer sends every task of a shard to the
 * same worker, so a shard (and every event type hashed to it) is owned by one thread. A shard is
 * opened by its `open` task, which also brings the port its deliveries go out on; if this worker
 * dies, the engine opens the shard again in the replacement under a new epoch, and the new Shard
 * recovers from disk.
 */
interface ShardSlot {
  epoch: number;
  sequencer: TaskSequencer;
  shard: Promise<Shard>;
  port: MessagePort | null;
}

const slots = new Map<number, ShardSlot>();

function slotFor(task: ShardTask): ShardSlot {
  let slot = slots.get(task.shard);
  if (task.op === 'open' && (!slot || slot.epoch < task.epoch)) {
    slot = { epoch: task.epoch, sequencer: new TaskSequencer(), shard: new Promise(() => {}), port: null };
    slots.set(task.shard, slot);
  }
  if (!slot || slot.epoch !== task.epoch) {
    throw new EngineError('SHARD_UNAVAILABLE', `shard ${task.shard} moved to another worker (epoch ${task.epoch}); retry`, { retryable: true });
  }
  return slot;
}

function send(
  slot: ShardSlot,
  shard: number,
  message: Omit<DeliveryMessage, 'shard' | 'epoch'> | { log: { level: string; message: string } } | { progress: WorkProgress },
  transfer: ArrayBuffer[] = [],
): void {
  slot.port?.postMessage({ shard, epoch: slot.epoch, ...message }, transfer);
}

/** Typed errors cross the thread as plain objects: structured cloning drops an Error's own fields. */
export default async function runShardTask(task: ShardTask): Promise<unknown> {
  try {
    return await run(task);
  } catch (error) {
    if (error instanceof EngineError) throw error.toJSON();
    if (error instanceof StorageError) throw new EngineError('STORAGE_FAILED', `${error.code}: ${error.message}`).toJSON();
    throw error;
  }
}

async function run(task: ShardTask): Promise<unknown> {
  const slot = slotFor(task);
  await slot.sequencer.turn(task.seq);
  if (task.op === 'open') {
    slot.port = task.port;
    const onError = (error: unknown) => send(slot, task.shard, { log: { level: 'error', message: error instanceof Error ? error.message : String(error) } });
    const onProgress = (progress: WorkProgress) => send(slot, task.shard, { progress });
    slot.shard = Shard.open(task.shard, task.config, (packed, transfer) => send(slot, task.shard, { packed }, transfer), onError, onProgress);
    try {
      const shard = await slot.shard;
      return { nextOffset: shard.nextOffset, subscriptions: shard.subscriptionCount, recovery: shard.recovery, recoveryProgress: shard.recoveryProgress };
    } finally {
      slot.sequencer.started(task.seq);
    }
  }
  const shard = await slot.shard;
  try {
    switch (task.op) {
      case 'publish': {
        // Signatures are checked before the batch's turn ends: later tasks of the shard wait (its
        // order holds) while the checks run on the thread pool and this thread serves other shards.
        const checking = shard.checkSignatures(task.batch);
        const verdicts = checking === null ? null : await checking;
        const result = await startThen(slot, task.seq, () => shard.publish(task.batch, verdicts));
        // The batch's buffer goes back to the engine with the result, transferred.
        return result.bodies ? move({ [transferableSymbol]: [result.bodies], [valueSymbol]: result }) : result;
      }
      case 'subscribe':
        return shard.subscribe(task.spec);
      case 'attach':
        return shard.attach(task.subscription, task.consumer, task.credits);
      case 'detach':
        return shard.detach(task.subscription, task.consumer);
      case 'settle':
        return shard.settle(task);
      case 'dead-letters':
        return shard.listDeadLetters(task.subscription, task.limit, task.afterOffset);
      case 'replay':
        return shard.replayDeadLetters(task.subscription, task.offsets);
      case 'trail':
        return await startThen(slot, task.seq, () => shard.eventTrail(task.type, task.id));
      case 'pause':
      case 'resume':
        return shard.setPaused(task.subscription, task.op === 'pause');
      case 'seek':
        return await startThen(slot, task.seq, () => shard.seek(task.subscription, task.position));
      case 'retention':
        return shard.setRetention({ retentionMs: task.retentionMs, retentionBytes: task.retentionBytes });
      case 'compaction-prepare':
        return shard.compaction.prepare(task.settings, new Set(task.skip), task.force);
      case 'compaction-install':
        if (task.result === null) {
          shard.compaction.abort(task.taskId);
          return null;
        }
        return await startThen(slot, task.seq, () => shard.compaction.install(task.result!));
      case 'stats':
        return await startThen(slot, task.seq, () => shard.stats());
      case 'close':
        await shard.close();
        slots.delete(task.shard);
        return undefined;
    }
  } finally {
    slot.sequencer.started(task.seq);
  }
}

/** Start `body` (its synchronous part runs now), let the next task start, then await the result. */
function startThen<T>(slot: ShardSlot, seq: number, body: () => Promise<T>): Promise<T> {
  const result = body();
  slot.sequencer.started(seq);
  return result;
}
