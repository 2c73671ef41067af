// The API server as pods see it, kept as kube-apiserver's bootstrap controller and lease endpoint
// reconciler keep it: the `default/kubernetes` Service (ClusterIP 10.96.0.1, 443/TCP `https`) and its
// Endpoints and EndpointSlice naming every serving API server (each registers its address under its
// node lease). Deleted or edited, they are put back at once. Every agent reads those Endpoints to
// label the addresses kube-apiserver in its ipcache, as Cilium's agent does.
import type { Logger } from 'pino';
import type { KVLease, KVStore, KVWatch } from './kvstore.ts';
import { ManifestError, type ResourceApi } from './types.ts';
import { listenHost } from '../kube/pki.ts';
import { tryParseIPv4 } from '../wire/ip-text.ts';

export const KUBERNETES_SVC_IP = '10.96.0.1';
const NAMESPACE = 'default';
const NAME = 'kubernetes';
/** <prefix><node> = {"ip","port"}: a serving API server, under its node's lease (kube-apiserver's masterleases). */
export const APISERVERS_PREFIX = 'ciliary/kube-apiservers/';
/** The resource records whose change makes the controller look again. */
const WATCHED = ['Service', 'Endpoints', 'EndpointSlice'].map((k) => `ciliary/resources/${k}/${NAMESPACE}/${NAME}`);

export interface ApiServerAddress {
  ip: string;
  port: number;
}

/**
 * The address pods reach the API at: the listen host, or the node IP when it listens on every
 * address; undefined for loopback or no address (unreachable from a pod, as Kubernetes refuses such endpoints).
 */
export function advertisedAddress(listen: string, nodeIP: string): ApiServerAddress | undefined {
  const host = listenHost(listen);
  const ip = host === '0.0.0.0' ? nodeIP : host;
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1) || 6443);
  if (tryParseIPv4(ip) === undefined || ip.startsWith('127.')) return undefined;
  return { ip, port };
}

export function kubernetesService(port: number): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: NAME, namespace: NAMESPACE, labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: { type: 'ClusterIP', clusterIP: KUBERNETES_SVC_IP, ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: port }], sessionAffinity: 'None' },
  };
}

/** Endpoints and EndpointSlice of the service: every API server's address (one port: they all serve on the first one's). */
export function kubernetesEndpoints(servers: ApiServerAddress[]): Array<Record<string, unknown>> {
  const ips = [...new Set(servers.map((s) => s.ip))].sort();
  const port = { name: 'https', port: servers[0].port, protocol: 'TCP' };
  return [
    {
      apiVersion: 'v1', kind: 'Endpoints',
      metadata: { name: NAME, namespace: NAMESPACE, labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
      subsets: [{ addresses: ips.map((ip) => ({ ip })), ports: [port] }],
    },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: NAME, namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': NAME } },
      addressType: 'IPv4', endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })), ports: [port],
    },
  ];
}

type EndpointsShape = { subsets?: Array<{ addresses?: Array<{ ip: string }> }>; endpoints?: Array<{ addresses?: string[] }> };

/** The API servers' addresses as the cluster publishes them: those of the `default/kubernetes` Endpoints and EndpointSlice. */
export function kubeApiServerIPs(resources: Pick<ResourceApi, 'get'>): string[] {
  const ips = new Set<string>();
  const ep = resources.get('Endpoints', NAMESPACE, NAME)?.manifest as EndpointsShape | undefined;
  for (const s of ep?.subsets ?? []) for (const a of s.addresses ?? []) ips.add(a.ip);
  const slice = resources.get('EndpointSlice', NAMESPACE, NAME)?.manifest as EndpointsShape | undefined;
  for (const e of slice?.endpoints ?? []) for (const a of e.addresses ?? []) ips.add(a);
  return [...ips].sort();
}

/** Calls `onChange` after each change of the kubernetes service's Endpoints or EndpointSlice, and once now. */
export function followKubeApiServerIPs(resources: ResourceApi, onChange: (ips: string[]) => void): () => void {
  let last = '';
  const look = () => {
    const ips = kubeApiServerIPs(resources);
    if (ips.join(',') === last) return;
    last = ips.join(',');
    onChange(ips);
  };
  const stop = resources.onChange?.((e) => { if (WATCHED.includes(e.key)) look(); }) ?? (() => undefined);
  look();
  return stop;
}

/** What the controller compares: a user's edit of another field is left alone, as kube-apiserver does. */
const essence = (o: Record<string, unknown> | undefined, kind: string): string => {
  if (!o) return '';
  if (kind === 'Service') {
    const spec = (o.spec ?? {}) as { clusterIP?: string; ports?: unknown; selector?: unknown };
    return JSON.stringify([spec.clusterIP, spec.ports, spec.selector ?? null]);
  }
  return JSON.stringify(kind === 'Endpoints' ? o.subsets : [o.endpoints, o.ports]);
};

/** Run by an agent that serves the Kubernetes API: registers it and keeps the service and its endpoints. */
export class KubernetesServiceController {
  private readonly servers = new Map<string, ApiServerAddress>();
  private watch?: KVWatch;
  private stopFollowing?: () => void;
  private chain: Promise<void> = Promise.resolve();
  private queued = false;
  private closed = false;

  constructor(private readonly o: { kv: KVStore; lease: KVLease; node: string; self: ApiServerAddress; resources: ResourceApi; log: Logger }) {}

  async start(): Promise<void> {
    await this.o.kv.put(APISERVERS_PREFIX + this.o.node, JSON.stringify(this.o.self), { lease: this.o.lease });
    this.watch = this.o.kv.watch(APISERVERS_PREFIX, (e) => {
      const node = e.key.slice(APISERVERS_PREFIX.length);
      if (e.type === 'delete') this.servers.delete(node);
      else {
        try {
          const a = JSON.parse(e.value) as ApiServerAddress;
          if (tryParseIPv4(a.ip) !== undefined && Number.isInteger(a.port)) this.servers.set(node, a);
        } catch {
          this.o.log.warn({ key: e.key }, 'kubernetes service: ignoring a bad API server registration');
        }
      }
      this.reconcile();
    });
    await this.watch.ready;
    this.stopFollowing = this.o.resources.onChange?.((e) => { if (WATCHED.includes(e.key)) this.reconcile(); });
    this.reconcile();
    await this.chain;
  }

  /** One pass at a time; changes during a pass make one more. */
  private reconcile(): void {
    if (this.queued || this.closed) return;
    this.queued = true;
    this.chain = this.chain.then(() => {
      this.queued = false;
      return this.reconcileOnce();
    }).catch((e: Error) => this.o.log.warn({ err: e.message }, 'kubernetes service: reconciling failed'));
  }

  private async reconcileOnce(): Promise<void> {
    if (this.closed) return;
    // The registry can lag our own put at start: this server is always one of them.
    const servers = [...new Map([[this.o.node, this.o.self], ...this.servers]).values()];
    const want = [kubernetesService(this.o.self.port), ...kubernetesEndpoints(servers)];
    for (const object of want) {
      const kind = object.kind as string;
      const have = this.o.resources.get(kind, NAMESPACE, NAME)?.manifest as Record<string, unknown> | undefined;
      if (have && essence(have, kind) === essence(object, kind)) continue;
      try {
        const [r] = await this.o.resources.apply([object], { anyNamespace: true });
        this.o.log.info({ kind, result: r?.result }, 'kubernetes service: default/kubernetes written as the API servers are');
      } catch (e) {
        if (e instanceof ManifestError && e.statusCode === 409) continue;
        throw e;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopFollowing?.();
    this.watch?.close();
    await this.chain;
  }
}
