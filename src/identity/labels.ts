// Security labels: a pod's, as Cilium derives them (its own labels with source k8s:, plus namespace,
// namespace labels, cluster and service account), and the reserved identities' ("reserved:host").
import { RESERVED_IDENTITIES, reservedLabel } from '../dataplane/vocab/reserved-identities.ts';

/** Labels of the reserved identities, as Cilium names them: 1 → ["reserved:host"], …. */
export function reservedIdentityLabels(): Map<number, string[]> {
  return new Map(Object.values(RESERVED_IDENTITIES).map((id) => [id, [reservedLabel(id)!]]));
}

export function securityLabels(podLabels: Record<string, string>, namespace: string, cluster: string, serviceAccount = 'default'): string[] {
  const out = Object.entries(podLabels).map(([k, v]) => `k8s:${k}=${v}`);
  out.push(
    `k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=${namespace}`,
    `k8s:io.cilium.k8s.policy.cluster=${cluster}`,
    `k8s:io.cilium.k8s.policy.serviceaccount=${serviceAccount}`,
    `k8s:io.kubernetes.pod.namespace=${namespace}`,
  );
  return out.sort();
}
