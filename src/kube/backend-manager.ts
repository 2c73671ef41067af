// KubeBackend over today's ResourceManager (ResourceApi) and the agent facade: views become Kubernetes
// objects, manager errors become BackendErrors. The integrator re-points this file at the refactored manager.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { STANDIN_BIN } from '../workloads/images.ts';
import { podHostnameWrapper } from '../cli/pods.ts';
import { ApiError, ManifestError, type AgentFacade, type ResourceApi, type ResourceView, type Service } from '../control/types.ts';
import type { KVStore } from '../control/kvstore.ts';
import type { RemotePod } from '../control/ipcache-sync.ts';
import { BackendError, type EndpointInfo, type KubeBackend, type KubeObject, type NodeInfo, type StoredKind } from './backend.ts';
import { replicaSetOfPod } from './derived-controllers.ts';
import { LeaseTable } from './leases.ts';
import { StoreRevisions } from './store-revisions.ts';

export type ManagerAgent = Pick<AgentFacade, 'nodeName' | 'status' | 'config' | 'listEndpoints' | 'getPod' | 'listIdentities' | 'listNodes'> & { remotePods?(): RemotePod[] };

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'ciliary');

const seconds = (iso: string) => iso.replace(/\.\d+Z$/, 'Z');

function podStatus(v: ResourceView, m: KubeObject): Record<string, unknown> {
  const s = v.status as { phase: string; status: string; ready: string; restarts: number; podIP: string; node: string; reason?: string; startedAt?: string; exitCode?: number; image?: string };
  const c = ((m.spec as { containers?: Array<{ name: string; image: string }> }).containers ?? [])[0];
  const ready = s.ready === '1/1';
  const condition = (type: string, ok: boolean) => ({ type, status: ok ? 'True' : 'False', lastTransitionTime: seconds(v.createdAt) });
  if (s.phase === 'Pending') {
    return { phase: 'Pending', conditions: [{ ...condition('PodScheduled', false), reason: 'Unschedulable', message: s.reason }], qosClass: 'BestEffort' };
  }
  const state = s.status === 'Running' ? { running: { startedAt: seconds(s.startedAt ?? v.createdAt) } }
    : s.status === 'CrashLoopBackOff' ? { waiting: { reason: 'CrashLoopBackOff' } }
      : { terminated: { exitCode: s.exitCode ?? 0, reason: s.status, startedAt: seconds(s.startedAt ?? v.createdAt) } };
  return {
    phase: s.phase,
    conditions: [condition('Initialized', true), condition('Ready', ready), condition('ContainersReady', ready), condition('PodScheduled', true)],
    hostIP: '', podIP: s.podIP, podIPs: s.podIP ? [{ ip: s.podIP }] : [], startTime: seconds(v.createdAt), qosClass: 'BestEffort',
    containerStatuses: c ? [{ name: c.name, image: c.image, imageID: '', ready, started: s.status === 'Running', restartCount: s.restarts, state }] : [],
  };
}

export class ManagerBackend implements KubeBackend {
  private readonly started = new Date().toISOString();
  /** Policies carry no creation time in the manager: the first time this server saw each one stands in. */
  private readonly firstSeen = new Map<string, string>();

  private readonly revisions: StoreRevisions;
  private readonly leaseTable: LeaseTable;

  constructor(private readonly resources: ResourceApi, private readonly agent: ManagerAgent, kv: KVStore) {
    this.revisions = new StoreRevisions(kv, resources);
    this.leaseTable = new LeaseTable(kv);
    this.leaseTable.onChange(() => this.revisions.changed('lease'));
  }

  private toObject(v: ResourceView): KubeObject {
    const m = structuredClone(v.manifest) as KubeObject;
    const seenKey = `${v.kind}/${v.namespace ?? ''}/${v.name}`;
    if (!v.createdAt && !this.firstSeen.has(seenKey)) this.firstSeen.set(seenKey, new Date().toISOString());
    m.metadata = {
      ...m.metadata, ...(v.namespace ? { namespace: v.namespace } : {}), creationTimestamp: seconds(v.createdAt || this.firstSeen.get(seenKey)!),
      resourceVersion: this.revisions.of(v.kind, v.namespace, v.name),
    };
    switch (v.kind) {
      case 'Pod': {
        const node = (v.status as { node?: string }).node;
        m.spec = { ...(m.spec as object), ...(node ? { nodeName: node } : {}) };
        const rs = typeof v.status.owner === 'string' ? replicaSetOfPod(v.name, v.status.owner) : undefined;
        if (rs) m.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs, controller: true, blockOwnerDeletion: true }];
        m.status = podStatus(v, m);
        (m.status as { hostIP: string }).hostIP = node ? this.agent.status().nodeIP : '';
        break;
      }
      case 'Service': {
        const svc = (v.status as { service: Service }).service;
        const ports = (m.spec as { ports?: Array<Record<string, unknown>> }).ports ?? [];
        // As `ciliary get svc`: the agent fills nodePort in, or a single-port service has it on its NodePort frontend.
        const single = svc.type !== undefined && svc.type !== 'ClusterIP' && svc.ports.length === 1 ? svc.frontends.find((f) => f.type === 'NodePort')?.port : undefined;
        const nodePorts = new Map(svc.ports.map((p) => [p.port, p.nodePort ?? single]));
        const lbIPs = [...new Set(svc.frontends.filter((f) => f.type === 'LoadBalancer').map((f) => f.address))];
        m.spec = {
          ...(m.spec as object), clusterIP: svc.clusterIP, clusterIPs: [svc.clusterIP], type: svc.type ?? 'ClusterIP',
          sessionAffinity: svc.sessionAffinity ?? 'None', ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack',
          ports: ports.map((p) => ({ protocol: 'TCP', targetPort: p.port, ...p, ...(nodePorts.get(p.port as number) ? { nodePort: nodePorts.get(p.port as number) } : {}) })),
        };
        m.status = { loadBalancer: lbIPs.length ? { ingress: lbIPs.map((ip) => ({ ip, ipMode: 'VIP' })) } : {} };
        break;
      }
      case 'Deployment': {
        const s = v.status as { replicas: number; ready: number; upToDate: number; available: number };
        m.status = { replicas: s.replicas, readyReplicas: s.ready, updatedReplicas: s.upToDate, availableReplicas: s.available, observedGeneration: 1 };
        break;
      }
      case 'Namespace':
        m.status = { phase: String(v.status.phase ?? 'Active') };
        break;
      default:
        m.status = v.kind === 'CiliumLoadBalancerIPPool'
          ? { conditions: [{ type: 'cilium.io/IPsAvailable', status: 'True', message: String(v.status.ipsAvailable ?? 0) }, { type: 'cilium.io/PoolConflict', status: v.status.conflicting ? 'True' : 'False' }] }
          : { conditions: [{ type: 'Valid', status: 'True', message: 'Policy validation succeeded' }] };
    }
    return m;
  }

  list(kind: StoredKind, namespace?: string): KubeObject[] {
    return this.resources.list(kind, namespace).map((v) => this.toObject(v));
  }

  get(kind: StoredKind, namespace: string | undefined, name: string): KubeObject | undefined {
    const v = this.resources.get(kind, namespace, name);
    return v && this.toObject(v);
  }

  async apply(object: KubeObject): Promise<'created' | 'configured' | 'unchanged'> {
    const { kind, metadata: { namespace, name } } = object;
    const before = this.revisions.of(kind, namespace, name);
    try {
      const [r] = await this.resources.apply([object]);
      // The reply carries the new resourceVersion: wait for the store's event of this write.
      if (r.result !== 'unchanged') await this.revisions.settled(kind, namespace, name, before);
      return r.result as 'created' | 'configured' | 'unchanged';
    } catch (e) {
      throw backendError(e);
    }
  }

  async delete(kind: StoredKind, namespace: string | undefined, name: string): Promise<void> {
    try {
      await this.resources.delete(kind, namespace, name);
      this.firstSeen.delete(`${kind}/${namespace ?? ''}/${name}`);
    } catch (e) {
      throw backendError(e);
    }
  }

  onChange(listener: () => void): () => void {
    return this.revisions.onChange(listener);
  }

  resourceVersion(): string {
    return this.revisions.current;
  }

  /** The kvstore leases of the table (the controllers' lock, registered sources) and those the resource manager lists as its Lease kind. */
  leases(namespace?: string): KubeObject[] {
    const own = this.leaseTable.list(namespace);
    let managed: KubeObject[];
    try {
      managed = this.list('Lease' as StoredKind, namespace).map(({ status: _status, ...o }) => o as KubeObject);
    } catch (e) {
      // A manager without the Lease kind lists none.
      if (e instanceof ApiError && e.statusCode === 404) managed = [];
      else throw e;
    }
    const seen = new Set(own.map((o) => `${o.metadata.namespace}/${o.metadata.name}`));
    return [...own, ...managed.filter((o) => !seen.has(`${o.metadata.namespace}/${o.metadata.name}`))];
  }

  /** Stops following the store. */
  close(): void {
    this.revisions.close();
    this.leaseTable.close();
  }

  podLogPath(namespace: string, name: string): string | undefined {
    return this.resources.podLogPath(namespace, name);
  }

  remoteLogArgv(namespace: string, name: string, follow: boolean): string[] | undefined {
    if (this.agent.getPod(namespace, name) || !this.resources.get('Pod', namespace, name)) return undefined;
    return [CLI, '--socket', this.socketOf(this.agent.nodeName), 'logs', name, '-n', namespace, ...(follow ? ['-f'] : [])];
  }

  podExecArgv(namespace: string, name: string, command: string[]): string[] | undefined {
    const pod = this.agent.getPod(namespace, name);
    // The seeds' tools missing on the host (netperf) resolve to ciliary's stand-ins, as `ciliary exec` runs them.
    if (pod) return ['env', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}:${STANDIN_BIN}`, 'ip', 'netns', 'exec', pod.netns, ...podHostnameWrapper(pod), ...command];
    // Another node's pod: `ciliary exec` finds that node's agent and the pod's namespace.
    if (!this.resources.get('Pod', namespace, name)) return undefined;
    return [CLI, '--socket', this.socketOf(this.agent.nodeName), 'exec', name, '-n', namespace, '--', ...command];
  }

  /** A node's agent socket: this agent's, or a sibling's under the same state root (a lab on one machine). */
  private socketOf(node: string): string {
    const own = String(this.agent.config()['api-socket']);
    return node === this.agent.nodeName ? own : join(dirname(dirname(own)), node, 'agent.sock');
  }

  agentExecArgv(node: string, command: string[]): string[] | undefined {
    const [program, ...args] = command;
    const socket = this.socketOf(node);
    if (node !== this.agent.nodeName && !existsSync(socket)) return undefined;
    const cli = [CLI, '--socket', socket];
    if (program === 'cilium' || program === 'cilium-dbg') return [...cli, ...args];
    if (program === 'hubble') return [...cli, 'hubble', ...args];
    // The agent's pod shares the node's network namespace (hostNetwork), where the agent runs.
    if (node === this.agent.nodeName) return command;
    return ['sh', '-c', `echo "ciliary runs only cilium, cilium-dbg and hubble in node ${node}'s agent pod (kubectl exec from that node's API for other commands)" >&2; exit 126`];
  }

  node(): NodeInfo {
    const s = this.agent.status();
    return {
      name: this.agent.nodeName, internalIP: s.nodeIP, podCIDR: s.ipam.cidr, routerIP: s.routerIP, createdAt: new Date(Date.now() - s.uptimeSeconds * 1000).toISOString(), agentVersion: s.version,
      labels: { 'kubernetes.io/hostname': this.agent.nodeName, 'kubernetes.io/os': 'linux', ...this.agent.listNodes?.().find((n) => n.name === this.agent.nodeName)?.labels },
    };
  }

  nodes(): NodeInfo[] {
    const registered = this.agent.listNodes?.() ?? [];
    // An agent alone (no registry) is its cluster's control plane.
    if (!registered.length) return [{ ...this.node(), labels: { ...this.node().labels, 'node-role.kubernetes.io/control-plane': '' } }];
    const started = this.node().createdAt;
    return registered.map((n) => ({
      name: n.name, internalIP: n.nodeIP, podCIDR: n.podCIDR, routerIP: n.routerIP, createdAt: n.createdAt ?? started, agentVersion: n.version,
      labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', ...n.labels }, osImage: n.osImage, kernelVersion: n.kernelVersion, ready: n.ready,
    })).sort((a, b) => a.name.localeCompare(b.name));
  }

  endpoints(): EndpointInfo[] {
    const nodeIP = this.agent.status().nodeIP;
    const local = this.agent.listEndpoints().filter((e) => !e.isHost && e.podName).map((e) => {
      const [namespace, pod] = e.podName.split('/');
      return {
        id: e.id, nodeIP, namespace, pod, identity: e.identity, labels: e.labels, ipv4: e.ipv4, state: e.state,
        policyIngress: e.policyIngress === 'Enabled', policyEgress: e.policyEgress === 'Enabled',
      };
    });
    // Another node's pods as their agent published them: running there with an address (ready); their policy state only that agent knows.
    const remote = (this.agent.remotePods?.() ?? []).map((p) => ({
      nodeIP: p.hostIP, namespace: p.namespace, pod: p.name, identity: p.identity, ipv4: p.ip, state: 'ready',
      labels: Object.entries(p.labels).map(([k, v]) => `k8s:${k}=${v}`).sort(),
    }));
    return [...local, ...remote];
  }

  identities(): Array<{ id: number; labels: string[] }> {
    return this.agent.listIdentities();
  }

  config(): Record<string, unknown> {
    return this.agent.config();
  }
}

/** The manager's message without its `Kind "name": field: ` prefix, which the API's Status carries separately. */
function backendError(e: unknown): unknown {
  if (!(e instanceof ApiError)) return e;
  const path = e instanceof ManifestError ? e.path : undefined;
  let msg = e.message.replace(/ \(this apply's new objects were removed again\)$/, '');
  const at = path ? msg.indexOf(`${path}: `) : -1;
  if (at >= 0) msg = msg.slice(at + path!.length + 2);
  else msg = msg.replace(/^\w+ "[^"]*": /, '');
  return new BackendError(e.statusCode, msg, path);
}
