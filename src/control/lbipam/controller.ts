// LB-IPAM's controller, Cilium's operator part: one agent at a time (the holder of a kvstore leader key)
// turns the pools and LoadBalancer services of the cluster into each service's
// status.loadBalancer.ingress, written through the resource manager, so two agents never hand out one
// address. Every agent follows the same records; any of them takes over when the holder stops.
import type { Logger } from 'pino';
import type { KVStore } from '../kvstore.ts';
import type { ResourceView } from '../types.ts';
import { LeaderLease } from '../resources/leader.ts';
import { RESOURCES_PREFIX } from '../resources/manager.ts';
import { statusUpdates, type StatusUpdate } from './status.ts';
import { ReconcileLoop } from '../reconcile-loop.ts';

export const LBIPAM_LEADER_KEY = 'ciliary/leader/lbipam';
const RETRY_MS = 1000;

export interface LbipamDeps {
  kv: KVStore;
  node: string;
  log: Logger;
  leaseTtlSeconds: number;
  resources: {
    list(kind: string): ResourceView[];
    /** Runs `compute` once every earlier change took effect, then writes what it returns. */
    updateStatuses(compute: () => StatusUpdate[]): Promise<void>;
    /** After a record changed and the manager took it in. */
    onChange(listener: (e: { key: string }) => void): () => void;
  };
}

export class LBIPAM {
  private leader?: LeaderLease;
  private unsubscribe?: () => void;
  private readonly loop = new ReconcileLoop(
    () => this.d.resources.updateStatuses(() => this.leader?.isLeader ? statusUpdates(this.d.resources.list('Service'), this.d.resources.list('CiliumLoadBalancerIPPool')) : []),
    (err) => {
      this.d.log.warn({ err: err.message }, 'lbipam: writing service statuses failed, retrying');
      this.retry ??= setTimeout(() => {
        this.retry = undefined;
        this.schedule();
      }, RETRY_MS);
      this.retry.unref();
    },
  );
  private retry?: NodeJS.Timeout;

  constructor(private readonly d: LbipamDeps) {}

  async start(): Promise<void> {
    const watched = [`${RESOURCES_PREFIX}Service/`, `${RESOURCES_PREFIX}CiliumLoadBalancerIPPool/`];
    this.unsubscribe = this.d.resources.onChange((e) => {
      if (watched.some((p) => e.key.startsWith(p))) this.schedule();
    });
    this.leader = new LeaderLease(this.d.kv, this.d.node, this.d.leaseTtlSeconds, () => this.schedule(), this.d.log, LBIPAM_LEADER_KEY);
    await this.leader.start();
  }

  /** Only the elected writer reconciles. */
  private schedule(): void {
    if (this.leader?.isLeader) this.loop.request();
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    await this.loop.idle();
    clearTimeout(this.retry);
    await this.leader?.close();
  }
}
