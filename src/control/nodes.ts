// This node in the cluster's registry (cilium/state/nodes/v1/default/<name>, as Cilium's kvstore mode),
// written under the node's lease: it vanishes when the agent stops renewing it.
import type { KVLease, KVStore } from './kvstore.ts';

export const NODES_PREFIX = 'cilium/state/nodes/v1/default/';
/** Seconds a node's registration and identity claims outlive its agent. */
export const NODE_LEASE_TTL = 10;

export interface NodeRecord {
  name: string;
  nodeIP: string;
  podCIDR: string;
  routerIP: string;
  version: string;
}

export async function registerNode(kv: KVStore, lease: KVLease, node: NodeRecord): Promise<void> {
  await kv.put(NODES_PREFIX + node.name, JSON.stringify(node), { lease });
}
