import type { KeyObject } from 'node:crypto';
import { EngineError } from '../errors.js';
import { decodeEventBodyAt } from '../event-decoding.js';
import { publicKeyFromRaw, verifyEventSignatureAsync } from '../signing.js';
import { PublishFlag, type EncodedPublishBatch, type ProducerIdentity } from '../shard-messages.js';

const MAX_CACHED_KEYS = 10_000;

/** Per event of a batch: null to store it, or why it is refused. */
export type SignatureVerdicts = Array<EngineError | null>;

/**
 * Signature checks of a shard's publish batches. Every event that is signed, or whose producer must
 * sign, is checked before the batch is stored: a missing or bad signature refuses that event alone.
 * The Ed25519 verifications run on libuv's thread pool, `inFlight` at a time, so a batch of signed
 * events is verified on several cores while this thread serves other shards (one verification
 * costs about 100 µs, far more than storing the event).
 */
export class SignatureChecks {
  private readonly keys = new Map<string, { raw: string; key: KeyObject }>();

  constructor(private readonly inFlight: number) {}

  /** Whether any event of `batch` needs its signature checked. */
  needed(batch: EncodedPublishBatch): boolean {
    for (const producer of batch.producers) if (producer.requireSignatures) return true;
    for (let i = 0; i < batch.flags.length; i++) if (batch.flags[i]! & PublishFlag.SIGNED) return true;
    return false;
  }

  /** The verdict on every event of `batch` (null for events that need no check). */
  async check(batch: EncodedPublishBatch): Promise<SignatureVerdicts> {
    const count = batch.flags.length;
    const verdicts: SignatureVerdicts = new Array<EngineError | null>(count).fill(null);
    const pending: Array<() => Promise<void>> = [];
    for (let i = 0; i < count; i++) {
      const producer = batch.producers[batch.producerOf[i]!]!;
      const flag = batch.flags[i]!;
      if (!(flag & PublishFlag.SIGNED) && !producer.requireSignatures) continue;
      const event = decodeEventBodyAt(batch.bodies, i === 0 ? 0 : batch.ends[i - 1]!, batch.ends[i]!, null, null);
      if (!event.signature) {
        if (producer.requireSignatures) {
          verdicts[i] = new EngineError('SIGNATURE_REQUIRED', `client ${producer.id} must sign its events; event ${event.id} has no signature`, { field: 'signature' });
        }
        continue;
      }
      const key = producer.publicKey ? this.keyFor(producer) : null;
      if (!key) {
        verdicts[i] = new EngineError('SIGNATURE_INVALID', `client ${producer.id} has no public key registered to verify signatures`, { field: 'signature' });
        continue;
      }
      // The signature covers the id, so the producer must have chosen it before signing.
      if (!(flag & PublishFlag.PRODUCER_ID)) {
        verdicts[i] = new EngineError('INVALID_EVENT', 'a signed event must carry its own id (the signature covers it)', { field: 'id' });
        continue;
      }
      const signature = event.signature;
      pending.push(async () => {
        const valid = await verifyEventSignatureAsync(key, event, signature);
        if (!valid) verdicts[i] = new EngineError('SIGNATURE_INVALID', `signature of event ${event.id} does not verify with client ${producer.id}'s key`, { field: 'signature' });
      });
    }
    await runBounded(pending, this.inFlight);
    return verdicts;
  }

  private keyFor(producer: ProducerIdentity): KeyObject {
    const rawHex = Buffer.from(producer.publicKey!).toString('hex');
    const cached = this.keys.get(producer.id);
    if (cached && cached.raw === rawHex) return cached.key;
    const key = publicKeyFromRaw(producer.publicKey!);
    if (this.keys.size >= MAX_CACHED_KEYS) this.keys.clear();
    this.keys.set(producer.id, { raw: rawHex, key });
    return key;
  }
}

/** Run `jobs`, at most `limit` at a time. */
async function runBounded(jobs: ReadonlyArray<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, lane));
}
