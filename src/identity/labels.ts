// Security labels of a pod, as Cilium derives them: the pod's own labels with source k8s:, plus
// namespace, namespace labels, cluster and service account.
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
