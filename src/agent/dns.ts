// Cluster DNS as kubeadm sets it up: the kube-system/coredns Deployment (two replicas of the built-in
// CoreDNS workload, k8s-app=kube-dns) behind the ordinary ClusterIP service kube-dns (10.96.0.10).
// The agent creates both at start when they are missing (createOnly: in a cluster, the first agent's
// copy stays), with the replicas on the creating node, as seed 003 has them on k8s-ctr.
import type { Logger } from 'pino';
import { ManifestError, type ResourceApi } from '../control/types.ts';
import { readResolvConf, upstreamsFromResolvConf, upstreamText } from '../proxy/dns/index.ts';
import { HOSTNAME_LABEL } from '../control/resources/placement.ts';

export const KUBE_DNS_IP = '10.96.0.10';
export const COREDNS_IMAGE = 'registry.k8s.io/coredns/coredns:v1.12.0';
const LABELS = { 'k8s-app': 'kube-dns' };

export function kubeDnsService(): unknown {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { ...LABELS, 'kubernetes.io/name': 'CoreDNS' } },
    spec: {
      selector: LABELS, clusterIP: KUBE_DNS_IP,
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
        { name: 'metrics', port: 9153, protocol: 'TCP', targetPort: 9153 },
      ],
    },
  };
}

/** The Deployment; its pods forward outside names to `upstreams` (CoreDNS's `forward . /etc/resolv.conf` of the node). */
export function corednsDeployment(node: string, upstreams: string[]): unknown {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: 'coredns', namespace: 'kube-system', labels: LABELS },
    spec: {
      replicas: 2,
      selector: { matchLabels: LABELS },
      template: {
        metadata: { labels: LABELS },
        spec: {
          serviceAccountName: 'coredns', dnsPolicy: 'Default',
          nodeSelector: { [HOSTNAME_LABEL]: node },
          containers: [{
            name: 'coredns', image: COREDNS_IMAGE, args: ['-conf', '/etc/coredns/Corefile'],
            env: [{ name: 'CILIARY_DNS_UPSTREAMS', value: upstreams.join(',') }],
            ports: [
              { containerPort: 53, name: 'dns', protocol: 'UDP' },
              { containerPort: 53, name: 'dns-tcp', protocol: 'TCP' },
              { containerPort: 9153, name: 'metrics', protocol: 'TCP' },
            ],
          }],
        },
      },
    },
  };
}

/** Creates kube-dns and coredns unless they exist (here or, through the store, on another node); upstreams from `resolvConf`. */
export async function ensureClusterDns(resources: ResourceApi, node: string, resolvConf: string, log: Logger): Promise<void> {
  const upstreams = upstreamsFromResolvConf(readResolvConf(resolvConf), []).map(upstreamText);
  for (const object of [kubeDnsService(), corednsDeployment(node, upstreams)]) {
    try {
      await resources.apply([object], { createOnly: true, anyNamespace: true });
    } catch (e) {
      if (e instanceof ManifestError && e.statusCode === 409) continue; // already there: the cluster's copy wins
      log.warn({ err: (e as Error).message }, 'cluster DNS: creating kube-dns/coredns failed');
    }
  }
}
