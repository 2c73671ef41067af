// One agent at a time does the cluster's controller work (deployment replicas, pending pods): the holder
// of a key created under its lease. When the holder stops renewing it, the key vanishes and another agent takes it.
import type { Logger } from 'pino';
import type { KVLease, KVStore, KVWatch } from '../kvstore.ts';

export const DEPLOYMENTS_LEADER_KEY = 'ciliary/leader/deployments';

export class LeaderLease {
  private lease?: KVLease;
  private watch?: KVWatch;
  private leading = false;

  constructor(
    private readonly kv: KVStore,
    private readonly holder: string,
    private readonly ttlSeconds: number,
    private readonly onElected: () => void,
    private readonly log: Logger,
    /** The controllers' key by default; LB-IPAM elects its own writer under another. */
    private readonly key = DEPLOYMENTS_LEADER_KEY,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /** Tries to lead now, and again whenever the key is released. */
  async start(): Promise<void> {
    this.lease = await this.kv.grantLease(this.ttlSeconds);
    this.watch = this.kv.watch(this.key, (e) => {
      if (e.key !== this.key) return;
      if (e.type === 'delete') {
        this.leading = false;
        void this.tryAcquire();
      } else if (e.value !== this.holder) this.leading = false;
    });
    await this.watch.ready;
    await this.tryAcquire();
  }

  private async tryAcquire(): Promise<void> {
    if (this.leading || !this.lease) return;
    try {
      if (!(await this.kv.createOnly(this.key, this.holder, { lease: this.lease }))) return;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'leader election: store unreachable');
      return;
    }
    this.leading = true;
    this.log.info({ key: this.key }, 'leading');
    this.onElected();
  }

  /** Hands leadership over at once (the others see the key go). */
  async close(): Promise<void> {
    this.watch?.close();
    const lease = this.lease;
    this.lease = undefined;
    this.leading = false;
    await lease?.revoke().catch(() => undefined);
  }
}
