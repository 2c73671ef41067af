// Cluster DNS in the agent: a kube-dns Service (10.96.0.10) whose backend is this node's DNS
// server on the router IP, answering <svc>.<ns>.svc.cluster.local from the service table.
import type { Logger } from 'pino';
import { ClusterDnsServer } from '../proxy/dns/index.ts';
import type { ServiceManager } from '../nat/services.ts';

export const KUBE_DNS_IP = '10.96.0.10';
const SVC_NAME = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/;

export async function startClusterDns(services: ServiceManager, routerIP: string, log: Logger): Promise<ClusterDnsServer> {
  // Names outside the cluster go to the node's resolvers (resolv.conf), or get SERVFAIL without one.
  const server = new ClusterDnsServer({
    resolve: (name) => {
      const m = SVC_NAME.exec(name);
      if (!m) return undefined;
      const svc = services.get(m[2], m[1]);
      return svc ? [svc.clusterIP] : undefined;
    },
    logger: log,
  });
  await server.listen(routerIP, 53);
  await services.apply({
    name: 'kube-dns', namespace: 'kube-system', clusterIP: KUBE_DNS_IP,
    ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }],
    backends: [{ ip: routerIP, port: 53 }],
  });
  return server;
}
