// Endpoints: a pod's whole life on this node. Create = namespace + eth0 + address + identity +
// map entries + program array + reader + process, all or nothing; delete = the reverse, leaving
// nothing behind; restore = re-attach to everything a previous agent process left running.
import { rmSync } from 'node:fs';
import type { Logger } from 'pino';
import { native } from '../native/index.ts';
import type { Datapath } from '../dataplane/datapath.ts';
import { securityLabels } from '../identity/labels.ts';
import type { IdentityAllocator } from '../identity/allocator.ts';
import type { Ipam } from './ipam.ts';
import { KVUnreachableError, type KVStore } from './kvstore.ts';
import { ApiError, type ContainerPort, type Endpoint, type Pod, type PodProcessSpec, type PodSpec } from './types.ts';
import type { PolicyEndpoint } from './policy.ts';
import { POD_IFNAME, type PodNetwork } from './podnet.ts';
import { EndpointMaps, HOST_IDENTITY } from './endpoint-maps.ts';
import { PodProcesses } from './pod-processes.ts';

const MAX_ENDPOINT_ID = 4095;
/** ciliary/endpoints/<node>/<namespace>/<pod>: every node's endpoints. */
export const ENDPOINTS_PREFIX = 'ciliary/endpoints/';

/** What the kvstore keeps per endpoint, enough to restore it after a restart. */
interface EndpointRecord {
  id: number;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  podIP: string;
  netns: string;
  identity: number;
  securityLabels: string[];
  ifindex: number;
  command?: string[];
  ports?: ContainerPort[];
  pid?: number;
  createdAt: string;
  process?: PodProcessSpec;
  restarts?: number;
  exitCode?: number;
  startedAt?: string;
}

export interface EndpointManagerOptions {
  node: string;
  nodeIP: string;
  cluster: string;
  stateDir: string;
  mtu: number;
  offloads: boolean;
  dnsIP: string;
  /** Called after a pod appeared or went away (services recompute their backends, policy its maps). */
  onChange?: () => Promise<void>;
  policyMapMax: number;
  /** Policy enforcement state of an endpoint, for `endpoint list`. */
  enforcement?: (id: number) => { ingress: boolean; egress: boolean };
  onRemoved?: (id: number) => void;
  /** Namespaces and devices (linuxPodNetwork), or none (memoryPodNetwork). */
  podNetwork: PodNetwork;
  /** Whether pod commands run; an agent core records pods without processes. */
  processes: boolean;
  /** enable-host-firewall: the host endpoint gets a policy map; these are its labels for host policies (reserved:host + node labels). */
  hostFirewall?: { labels: string[] };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export class EndpointManager {
  private readonly records = new Map<string, EndpointRecord>(); // "ns/name" → record
  private readonly fds = new Map<number, number>(); // endpoint id → TUN fd
  private readonly busy = new Set<string>(); // pods being created or deleted
  /** Pods whose start waits for the store (a new label set's identity): their endpoint id, as Cilium lists them waiting-for-identity. */
  private readonly waiting = new Map<string, { id: number; podName: string; labels: string[] }>();
  private readonly processes: PodProcesses;
  hostEndpointID = 0;
  private readonly maps: EndpointMaps;

  constructor(
    private readonly o: EndpointManagerOptions,
    private readonly kv: KVStore,
    private readonly dp: Datapath,
    private readonly ipam: Ipam,
    private readonly identities: IdentityAllocator,
    private readonly log: Logger,
  ) {
    this.maps = new EndpointMaps(dp);
    this.processes = new PodProcesses(o.stateDir, log, { current: (r) => this.records.get(`${r.namespace}/${r.name}`) === r, save: (r) => this.saveRecord(r as EndpointRecord) });
  }

  private get prefix(): string {
    return `${ENDPOINTS_PREFIX}${this.o.node}/`;
  }

  netnsName(namespace: string, name: string): string {
    return `cil-${this.o.node}-${namespace}-${name}`;
  }

  // ---- host endpoint ---------------------------------------------------------------------------

  /** Registers the host endpoint (cilium_host) and the host's addresses in the maps. */
  async setupHost(fd: number, ifindex: number): Promise<void> {
    const key = `${this.prefix}host`;
    let id = Number(await this.kv.get(key));
    if (!id) {
      id = await this.allocateId();
      await this.kv.put(key, String(id));
    }
    this.hostEndpointID = id;
    this.maps.plumbHost(id, fd, ifindex, [this.ipam.routerIP, this.o.nodeIP].filter(Boolean), this.ipam.routerIP, this.o.hostFirewall ? this.o.policyMapMax : 0);
  }

  // ---- pods ------------------------------------------------------------------------------------

  list(): Pod[] {
    return [...this.records.values()].map((r) => this.toPod(r));
  }

  get(namespace: string, name: string): Pod | undefined {
    const r = this.records.get(`${namespace}/${name}`);
    return r && this.toPod(r);
  }

  endpoints(): Endpoint[] {
    const he = this.o.hostFirewall ? this.o.enforcement?.(this.hostEndpointID) : undefined;
    const host: Endpoint = {
      id: this.hostEndpointID, podName: '', identity: HOST_IDENTITY, labels: ['reserved:host'], ipv4: this.ipam.routerIP,
      ifindex: this.dp.epIfindex[this.hostEndpointID], ifname: 'cilium_host', state: 'ready',
      policyIngress: he?.ingress ? 'Enabled' : 'Disabled', policyEgress: he?.egress ? 'Enabled' : 'Disabled', isHost: true,
    };
    const pods = [...this.records.values()].map((r): Endpoint => {
      const e = this.o.enforcement?.(r.id) ?? { ingress: false, egress: false };
      return {
        id: r.id, podName: `${r.namespace}/${r.name}`, identity: r.identity, labels: r.securityLabels, ipv4: r.podIP,
        ifindex: r.ifindex, ifname: POD_IFNAME, state: 'ready', policyIngress: e.ingress ? 'Enabled' : 'Disabled', policyEgress: e.egress ? 'Enabled' : 'Disabled', isHost: false,
      };
    });
    const waiting = [...this.waiting.values()].map((w): Endpoint => ({
      id: w.id, podName: w.podName, identity: 0, labels: w.labels, ipv4: '', ifindex: 0, ifname: '', state: 'waiting-for-identity',
      policyIngress: 'Disabled', policyEgress: 'Disabled', isHost: false,
    }));
    return [host, ...pods, ...waiting].sort((a, b) => a.id - b.id);
  }

  /** The endpoint holding `ip` (the host's for the router IP) as endpoints() has it, without building that list: L7 records ask twice each. */
  endpointAt(ip: string): Pick<Endpoint, 'id' | 'identity' | 'labels'> | undefined {
    if (ip === this.ipam.routerIP) return { id: this.hostEndpointID, identity: HOST_IDENTITY, labels: ['reserved:host'] };
    for (const r of this.records.values()) if (r.podIP === ip) return { id: r.id, identity: r.identity, labels: r.securityLabels };
    return undefined;
  }

  async create(spec: PodSpec): Promise<Pod> {
    const namespace = spec.namespace || 'default';
    const key = `${namespace}/${spec.name}`;
    if (!DNS_LABEL.test(spec.name) || spec.name.length > 63) throw new ApiError(400, `name: "${spec.name}" must be a DNS-1123 label`);
    if (!DNS_LABEL.test(namespace)) throw new ApiError(400, `namespace: "${namespace}" must be a DNS-1123 label`);
    if (spec.node && spec.node !== this.o.node) throw new ApiError(400, `node: this agent runs node ${this.o.node}, not ${spec.node}`);
    if (this.records.has(key) || this.busy.has(key)) throw new ApiError(409, `pod "${key}" already exists`);
    const netns = this.netnsName(namespace, spec.name);
    if (netns.length > 200) throw new ApiError(400, 'name: too long');
    this.busy.add(key);
    const undo: Array<() => Promise<void> | void> = [];
    const labels = spec.labels ?? {};
    const secLabels = securityLabels(labels, namespace, this.o.cluster, spec.serviceAccount);
    // A pod that waited for its identity keeps the endpoint id it was listed with.
    let id = this.waiting.get(key)?.id ?? 0;
    try {
      if (!id) id = await this.allocateId();
      const podIP = await this.ipam.allocate(key);
      undo.push(() => this.ipam.release(podIP));
      const identity = await this.identities.acquire(secLabels);
      undo.push(() => this.identities.release(identity));
      const dev = await this.o.podNetwork.create({
        netns, podIP, routerIP: this.ipam.routerIP, hostname: spec.name, namespace, dnsIP: this.o.dnsIP, mtu: this.o.mtu, offloads: this.o.offloads,
      });
      undo.push(async () => {
        if (dev.fd >= 0) native.closeFd(dev.fd);
        await this.o.podNetwork.delete(netns);
      });
      const r: EndpointRecord = {
        id, name: spec.name, namespace, labels, podIP, netns, identity, securityLabels: secLabels, ifindex: dev.ifindex,
        command: spec.command?.length ? spec.command : undefined, ports: spec.ports, createdAt: new Date().toISOString(),
        ...(spec.process ? { process: spec.process } : {}),
      };
      this.plumb(r, dev.fd);
      undo.push(() => this.unplumb(r));
      this.records.set(key, r);
      undo.push(() => { this.records.delete(key); });
      if (r.command && this.o.processes) r.pid = this.processes.start(r);
      undo.push(() => this.processes.stop(r));
      await this.kv.put(this.prefix + key, JSON.stringify(r));
      this.log.info({ pod: key, id, ip: podIP, identity }, 'endpoint created');
      this.waiting.delete(key);
      await this.o.onChange?.();
      return this.toPod(r);
    } catch (e) {
      for (const u of undo.reverse()) await Promise.resolve(u()).catch((err) => this.log.warn({ err }, 'cleanup step failed'));
      // The store is away (a new label set's identity): listed as waiting-for-identity while the caller waits for it.
      if (e instanceof KVUnreachableError && id) {
        this.waiting.set(key, { id, podName: key, labels: secLabels });
        throw e;
      }
      if (id) await this.releaseWaiting(key, id);
      if (e instanceof ApiError || e instanceof KVUnreachableError) throw e;
      throw new ApiError(500, `creating pod "${key}": ${(e as Error).message}`);
    } finally {
      this.busy.delete(key);
    }
  }

  async delete(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const r = this.records.get(key);
    const waiting = this.waiting.get(key);
    if (!r && waiting) return this.releaseWaiting(key, waiting.id);
    if (!r) throw new ApiError(404, `pod "${key}" not found`);
    if (this.busy.has(key)) throw new ApiError(409, `pod "${key}" is busy`);
    this.busy.add(key);
    try {
      this.records.delete(key);
      this.processes.forget(key);
      await this.processes.stop(r);
      this.unplumb(r);
      await this.o.podNetwork.delete(r.netns);
      rmSync(this.processes.logPath(r), { force: true });
      await this.ipam.release(r.podIP);
      this.identities.release(r.identity);
      await this.kv.delete(`${this.prefix}id/${r.id}`);
      await this.kv.delete(this.prefix + key);
      this.log.info({ pod: key, id: r.id }, 'endpoint deleted');
      await this.o.onChange?.();
    } finally {
      this.busy.delete(key);
    }
  }

  /** After a restart: re-attach to every stored endpoint whose namespace still exists. */
  async restore(): Promise<number> {
    let n = 0;
    for (const p of await this.kv.list(this.prefix)) {
      if (p.key.slice(this.prefix.length).startsWith('id/') || p.key === `${this.prefix}host`) continue;
      const r = JSON.parse(p.value) as EndpointRecord;
      const key = `${r.namespace}/${r.name}`;
      try {
        if (!this.o.podNetwork.exists(r.netns)) throw new Error('namespace is gone');
        const dev = this.o.podNetwork.attach(r.netns, this.o.offloads);
        r.ifindex = dev.ifindex;
        await this.identities.acquire(r.securityLabels);
        this.plumb(r, dev.fd);
        this.records.set(key, r);
        if (this.o.processes) this.processes.adopt(r);
        n++;
      } catch (e) {
        this.log.warn({ pod: key, err: (e as Error).message }, 'dropping endpoint that cannot be restored');
        await this.o.podNetwork.delete(r.netns);
        await this.ipam.release(r.podIP);
        await this.kv.delete(p.key);
        await this.kv.delete(`${this.prefix}id/${r.id}`);
      }
    }
    return n;
  }

  /** Ends the pods' processes and stops reading devices; namespaces, devices and maps stay for the next agent process. */
  async shutdown(): Promise<void> {
    this.processes.shutdown();
    const running = [...this.records.values()].filter((r) => r.pid);
    for (const r of running) this.records.delete(`${r.namespace}/${r.name}`); // their exits restart nothing
    await Promise.all(running.map((r) => this.processes.stop(r)));
    this.dp.detachAll();
    for (const fd of this.fds.values()) native.closeFd(fd);
    this.fds.clear();
  }

  // ---- pieces ----------------------------------------------------------------------------------

  /** A pod that waited (or failed) gives its endpoint id back. */
  private async releaseWaiting(key: string, id: number): Promise<void> {
    this.waiting.delete(key);
    await this.kv.delete(`${this.prefix}id/${id}`).catch((err: Error) => this.log.warn({ pod: key, err: err.message }, 'releasing the endpoint id failed'));
  }

  private async allocateId(): Promise<number> {
    for (let tries = 0; tries < 10_000; tries++) {
      const id = 1 + Math.floor(Math.random() * MAX_ENDPOINT_ID);
      if (await this.kv.createOnly(`${this.prefix}id/${id}`, '1')) return id;
    }
    throw new Error('no free endpoint id');
  }

  /** What policy resolution needs to know about each pod endpoint. */
  policyEndpoints(): PolicyEndpoint[] {
    const pods = [...this.records.values()].map((r) => ({
      id: r.id, identity: r.identity, labels: r.securityLabels,
      namedPorts: Object.fromEntries((r.ports ?? []).filter((p) => p.name).map((p) => [p.name!, { port: p.containerPort, protocol: p.protocol ?? 'TCP' }])),
    }));
    // Host policies (CCNP nodeSelector) select the host endpoint by the node's labels.
    const fw = this.o.hostFirewall;
    return fw && this.hostEndpointID ? [{ id: this.hostEndpointID, identity: HOST_IDENTITY, labels: fw.labels }, ...pods] : pods;
  }

  /** An ipcache prefix for a CIDR identity (identity 0 removes it). */
  setIpcache(cidr: string, identity: number): void {
    this.maps.setIpcache(cidr, identity);
  }

  private plumb(r: EndpointRecord, fd: number): void {
    this.maps.plumb(r, fd, this.o.policyMapMax);
    if (fd >= 0) this.fds.set(r.id, fd);
  }

  private unplumb(r: EndpointRecord): void {
    this.maps.unplumb(r, this.fds.get(r.id));
    this.fds.delete(r.id);
    this.o.onRemoved?.(r.id);
  }

  /** Path of a pod's log file (stdout and stderr of every start, appended). */
  podLogPath(namespace: string, name: string): string | undefined {
    const r = this.records.get(`${namespace}/${name}`);
    return r && this.processes.logPath(r);
  }

  private async saveRecord(r: EndpointRecord): Promise<void> {
    const key = `${r.namespace}/${r.name}`;
    if (this.records.get(key) !== r) return;
    await this.kv.put(this.prefix + key, JSON.stringify(r)).catch((err: Error) => this.log.warn({ pod: key, err: err.message }, 'saving endpoint failed'));
  }

  private toPod(r: EndpointRecord): Pod {
    return {
      name: r.name, namespace: r.namespace, labels: r.labels, node: this.o.node, podIP: r.podIP, endpointID: r.id, state: 'ready',
      netns: r.netns, ifindex: r.ifindex, createdAt: r.createdAt, command: r.command, ports: r.ports, pid: r.pid,
      ...(r.process ? { process: r.process } : {}),
      ...(r.command && this.o.processes ? { processStatus: this.processes.status(r) } : {}),
    };
  }
}

