// The node lifecycle controller (kube-controller-manager's, on the controllers' leader): pods of a node
// NotReady — its agent stopped renewing its lease — for longer than pod-eviction-timeout are deleted, as
// kube's taint-based eviction does; a Deployment's are placed again on the ready nodes.
import { keyOf } from './handlers.ts';
import { nodeOf, type Scheduler } from './pods.ts';

export async function evictFromNotReadyNodes(s: Scheduler, timeoutMs: number): Promise<void> {
  if (!s.leading()) return;
  for (const [key, r] of [...s.records]) {
    const node = nodeOf(r);
    if (node === undefined || node === s.self || s.records.get(key) !== r || s.cluster.notReadyMs(node) < timeoutMs) continue;
    s.log.info({ pod: key, node }, 'evicting a pod from a NotReady node');
    await s.deletePod(key);
    if (r.owner) await s.reconcile(keyOf(r.manifest.metadata.namespace, r.owner));
  }
}
