// Services, the control-plane side of the load balancer: ClusterIP and NodePort allocation, frontends
// (frontends.ts: ClusterIP, externalIPs, NodePort per node address, LoadBalancer ingress), backends from the pods a selector matches, written into the LB maps in the order that
// keeps the datapath consistent (backends, then slots, then the service entry), and persisted in
// the kvstore so a restarted agent keeps its addresses and IDs.
import type { Logger } from 'pino';
import type { KVStore, KVWatch } from '../control/kvstore.ts';
import { ApiError, type Pod, type Service, type ServiceBackend, type ServiceFrontend, type ServiceSpec } from '../control/types.ts';
import { cidrContains, formatIPv4, parseCidr, parseIPv4, type Cidr } from '../wire/ip-text.ts';
import type { LoadBalancer } from './lb.ts';
import * as L from '../maps/cilium/lb.ts';
import { maglevTable } from './maglev.ts';
import { frontendAddresses, hasNodePorts, isLocalScope, serviceFlags, SURROGATE_ADDRESS, type FrontendType } from './frontends.ts';
import { NodePortAllocator } from './node-ports.ts';
import type { SteeredFrontends } from '../control/north-south-routing.ts';

const SPEC_PREFIX = 'ciliary/services/';
/** What a frontend's service entry takes from its service (none for a HostPort). */
type FrontendSpec = Pick<ServiceSpec, 'sessionAffinity' | 'sessionAffinityTimeoutSeconds' | 'externalTrafficPolicy'>;
export const FRONTEND_ID_PREFIX = 'ciliary/lb/frontend-ids/';
export const BACKEND_ID_PREFIX = 'ciliary/lb/backend-ids/';
const MAX_ID = 65535;
const DEFAULT_AFFINITY_TIMEOUT = 10800;

interface Stored {
  spec: ServiceSpec;
  clusterIP: string;
  createdAt: string;
}

export interface ServiceManagerOptions {
  serviceCidr: string;
  maglev: boolean;
  /** IPs that are never allocated (kube-dns, the kubernetes service). */
  reservedIPs: string[];
  /** This node: its name (Local traffic policy keeps its backends) and addresses (NodePort frontends). */
  node: string;
  nodeIPs: string[];
  /** The externalIPs, LoadBalancer addresses and hostPorts in force changed (their steering follows). */
  onSteeredFrontends?: (f: SteeredFrontends) => void;
}

export class ServiceManager {
  private readonly services = new ServiceTable();
  private addressList?: { generation: number; etag: string; json: string };
  /** Tells this run's ETags from an earlier run's (the generation starts again at 0). */
  private readonly instance = Date.now().toString(36);
  private readonly frontendIds = new Map<string, number>(); // "ip:port/PROTO" → id
  private readonly backendIds = new Map<string, number>(); // "ip:port/PROTO" → id
  private readonly backendNames = new Map<number, string>();
  private readonly usedIps = new Set<string>();
  private hostPortList: ServiceFrontend[] = [];
  readonly nodePorts = new NodePortAllocator();
  /** What each frontend id holds now, to remove stale slots and find unreferenced backends. */
  private readonly written = new Map<number, { addr: number; port: number; proto: number; count: number; backends: number[] }>();
  private readonly cidr: Cidr;
  private readonly key = new Uint8Array(L.SVC_KEY_SIZE);
  private readonly kv4 = new Uint8Array(4);
  private readonly value = new Uint8Array(16);
  private watch?: KVWatch;
  /** Map writes one after the other (services changed here or by others in the store, pod resyncs): a write computed from older pods must not land after a newer one. */
  private mapWrites: Promise<void> = Promise.resolve();

  constructor(
    private readonly kv: KVStore,
    private readonly lb: LoadBalancer,
    private readonly pods: () => Pod[],
    private readonly o: ServiceManagerOptions,
    private readonly log: Logger,
  ) {
    this.cidr = parseCidr(o.serviceCidr);
  }

  async restore(): Promise<void> {
    for (const p of await this.kv.list(FRONTEND_ID_PREFIX)) this.frontendIds.set(p.key.slice(FRONTEND_ID_PREFIX.length), Number(p.value));
    for (const p of await this.kv.list(BACKEND_ID_PREFIX)) this.backendIds.set(p.key.slice(BACKEND_ID_PREFIX.length), Number(p.value));
    for (const [name, id] of this.backendIds) this.backendNames.set(id, name);
    let following = false;
    this.watch = this.kv.watch(SPEC_PREFIX, (e) => {
      const sync = this.fromStore(e.key.slice(SPEC_PREFIX.length), e.type === 'put' ? e.value : undefined);
      if (sync && following) sync().catch((err: Error) => this.log.warn({ key: e.key, err: err.message }, 'service from the store failed'));
    });
    await this.watch.ready;
    following = true;
    await this.syncAll();
  }

  close(): void {
    this.watch?.close();
  }

  /** A stored service changed: the map update it needs, or undefined when it is ours already. */
  private fromStore(key: string, value: string | undefined): (() => Promise<void>) | undefined {
    const old = this.services.get(key);
    if (value === undefined) {
      if (!old) return undefined;
      this.services.delete(key);
      this.usedIps.delete(old.clusterIP);
      this.nodePorts.release(key);
      return () => this.syncService(undefined, old);
    }
    if (old && JSON.stringify(old) === value) return undefined;
    const next = JSON.parse(value) as Stored;
    this.services.set(key, next);
    this.usedIps.add(next.clusterIP);
    this.nodePorts.commit(key, nodePortsOf(next.spec));
    return () => this.syncService(next, old);
  }

  list(): Service[] {
    const pods = this.pods();
    return [...this.services.values()].map((s) => this.view(s, pods)).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  }

  /** Every service's name, namespace and clusterIP as JSON with an ETag, made again only after a
   *  change: CoreDNS reads it every few seconds, and the full list of 10,000 services took ~1 s. */
  addresses(): { etag: string; json: string } {
    const generation = this.services.generation;
    if (this.addressList?.generation !== generation) {
      const list = [...this.services.values()].map((s) => ({ name: s.spec.name, namespace: s.spec.namespace ?? 'default', clusterIP: s.clusterIP }));
      this.addressList = { generation, etag: `"${this.instance}-${generation}"`, json: JSON.stringify(list) };
    }
    return this.addressList;
  }

  get(namespace: string, name: string): Service | undefined {
    const s = this.services.get(`${namespace}/${name}`);
    return s && this.view(s);
  }

  async apply(spec: ServiceSpec): Promise<{ service: Service; result: 'created' | 'configured' | 'unchanged' }> {
    const namespace = spec.namespace || 'default';
    const key = `${namespace}/${spec.name}`;
    const old = this.services.get(key);
    const norm: ServiceSpec = { ...spec, namespace, ports: this.withNodePorts(key, spec, old) };
    if (old && norm.clusterIP && norm.clusterIP !== old.clusterIP) throw new ApiError(422, `spec.clusterIP: field is immutable (is ${old.clusterIP})`);
    const clusterIP = old?.clusterIP ?? (norm.clusterIP ? this.claimIP(norm.clusterIP) : this.allocateIP());
    const next: Stored = { spec: { ...norm, clusterIP }, clusterIP, createdAt: old?.createdAt ?? new Date().toISOString() };
    const result = !old ? 'created' : JSON.stringify(old.spec) === JSON.stringify(next.spec) ? 'unchanged' : 'configured';
    if (result !== 'unchanged') {
      this.services.set(key, next);
      this.nodePorts.commit(key, nodePortsOf(next.spec));
      try {
        await this.kv.put(SPEC_PREFIX + key, JSON.stringify(next));
        await this.syncService(next, old);
      } catch (e) {
        this.nodePorts.commit(key, old ? nodePortsOf(old.spec) : []);
        if (old) this.services.set(key, old);
        else {
          this.services.delete(key);
          this.usedIps.delete(clusterIP);
        }
        await this.syncAll();
        throw e;
      }
      this.log.info({ service: key, clusterIP, result }, 'service applied');
    }
    return { service: this.view(next), result };
  }

  async delete(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const s = this.services.get(key);
    if (!s) throw new ApiError(404, `service "${key}" not found`);
    this.services.delete(key);
    this.usedIps.delete(s.clusterIP);
    this.nodePorts.release(key);
    await this.kv.delete(SPEC_PREFIX + key);
    await this.syncService(undefined, s);
  }

  /** Runs one map write after those queued before it; its error goes to its caller only. */
  private serialized(write: () => Promise<void>): Promise<void> {
    const done = this.mapWrites.then(write);
    this.mapWrites = done.catch(() => undefined);
    return done;
  }

  /** Writes one service's frontends and removes those it no longer has; cheap with many services. */
  private syncService(s: Stored | undefined, old: Stored | undefined): Promise<void> {
    return this.serialized(() => this.writeService(s, old));
  }

  private async writeService(s: Stored | undefined, old: Stored | undefined): Promise<void> {
    const pods = this.pods();
    const live = new Set<number>();
    for (const fe of s ? await this.frontends(s, pods) : []) {
      live.add(fe.id);
      for (const b of fe.backends) this.writeBackend(b, fe.protocol, L.BE_STATE_ACTIVE);
      this.writeFrontend(fe, s!.spec, fe.backends.map((b) => b.id));
    }
    for (const fe of old ? await this.frontends(old, []) : []) if (!live.has(fe.id) && this.written.has(fe.id)) this.removeFrontend(fe.id);
    // Only a service with such addresses changes the steered set: the report goes over every service.
    if ((s && steeredAddresses(s).length > 0) || (old && steeredAddresses(old).length > 0)) this.reportSteered();
  }

  /** The externalIPs and LoadBalancer addresses of every service and the hostPorts of this node's pods, to the steering. */
  private reportSteered(): void {
    if (!this.o.onSteeredFrontends) return;
    const addresses = [...new Set([...this.services.values()].flatMap(steeredAddresses))].sort();
    const hostPorts = this.hostPortList.filter((f) => f.address === SURROGATE_ADDRESS).map((f) => ({ protocol: f.protocol === 'UDP' ? 'udp' as const : 'tcp' as const, port: f.port }));
    this.o.onSteeredFrontends({ addresses, hostPorts });
  }

  /** Recomputes every frontend from the services and the pods that exist now. */
  syncAll(): Promise<void> {
    return this.serialized(() => this.writeAll());
  }

  private async writeAll(): Promise<void> {
    const pods = this.pods();
    const live = new Set<number>();
    const referenced = new Set<number>();
    const sets: Array<[ServiceFrontend[], FrontendSpec]> = [];
    for (const s of this.services.values()) sets.push([await this.frontends(s, pods), s.spec]);
    sets.push([this.hostPortList = await this.hostPortFrontends(pods), {}]);
    for (const [frontends, spec] of sets) {
      for (const fe of frontends) {
        live.add(fe.id);
        const active = fe.backends.map((b) => b.id);
        for (const b of fe.backends) this.writeBackend(b, fe.protocol, L.BE_STATE_ACTIVE);
        this.writeFrontend(fe, spec, active);
        for (const id of active) referenced.add(id);
      }
    }
    for (const id of [...this.written.keys()]) if (!live.has(id)) this.removeFrontend(id);
    this.sweepBackends(referenced, pods);
    this.reportSteered();
  }

  // ---- frontends and backends -------------------------------------------------------------------

  /** The HostPort frontends of this node's pods (Cilium's, with no service): what `service list` shows beside the services. */
  hostPorts(): ServiceFrontend[] {
    return this.hostPortList;
  }

  /** A container port with hostPort: a frontend on each node address and the 0.0.0.0 surrogate, its pod the backend. */
  private async hostPortFrontends(pods: Pod[]): Promise<ServiceFrontend[]> {
    const out: ServiceFrontend[] = [];
    for (const pod of pods) {
      if (pod.node !== this.o.node || pod.state !== 'ready') continue;
      for (const cp of pod.ports ?? []) {
        if (!cp.hostPort) continue;
        const protocol = cp.protocol ?? 'TCP';
        const backend: ServiceBackend = { id: await this.backendId(pod.podIP, cp.containerPort, protocol), ip: pod.podIP, port: cp.containerPort, pod: `${pod.namespace}/${pod.name}`, state: 'active' };
        for (const address of [SURROGATE_ADDRESS, ...this.o.nodeIPs]) {
          out.push({ id: await this.frontendId(address, cp.hostPort, protocol), address, port: cp.hostPort, protocol, type: 'HostPort', backends: [backend] });
        }
      }
    }
    return out;
  }

  private async frontends(s: Stored, pods: Pod[]): Promise<ServiceFrontend[]> {
    const byPort: ServiceBackend[][] = [];
    const local = new Set<number>(); // backend ids of pods on this node
    for (const p of s.spec.ports) {
      const protocol = p.protocol ?? 'TCP';
      const backends: ServiceBackend[] = [];
      if (s.spec.backends) {
        for (const b of s.spec.backends) backends.push({ id: await this.backendId(b.ip, b.port ?? p.port, protocol), ip: b.ip, port: b.port ?? p.port, pod: '', state: 'active' });
      } else if (s.spec.selector && Object.keys(s.spec.selector).length > 0) {
        for (const pod of pods) {
          if (pod.namespace !== s.spec.namespace || pod.state !== 'ready' || !matches(s.spec.selector, pod.labels)) continue;
          const port = targetPort(p.targetPort ?? p.port, pod, protocol);
          if (port === undefined) continue;
          const id = await this.backendId(pod.podIP, port, protocol);
          if (pod.node === this.o.node) local.add(id);
          backends.push({ id, ip: pod.podIP, port, pod: `${pod.namespace}/${pod.name}`, state: 'active' });
        }
      }
      byPort.push(backends.sort((a, b) => a.id - b.id));
    }
    const out: ServiceFrontend[] = [];
    for (const fa of frontendAddresses(s.spec, s.clusterIP, this.o.nodeIPs)) {
      const all = byPort[fa.portIndex];
      const backends = isLocalScope(s.spec, fa.type) ? all.filter((b) => local.has(b.id)) : all;
      out.push({ id: await this.frontendId(fa.address, fa.port, fa.protocol), address: fa.address, port: fa.port, protocol: fa.protocol, type: fa.type, backends });
    }
    return out;
  }

  private writeBackend(b: ServiceBackend, protocol: string, state: number): void {
    const v = new DataView(this.value.buffer);
    this.value.fill(0);
    v.setUint32(L.BE_ADDRESS, parseIPv4(b.ip));
    v.setUint16(L.BE_PORT, b.port);
    v.setUint8(L.BE_PROTO, L.protoNumber(protocol));
    v.setUint8(L.BE_FLAGS, state);
    new DataView(this.kv4.buffer).setUint32(0, b.id, true);
    this.check(this.lb.backends.update(this.kv4, 0, this.value, 0, 0), 'backend');
  }

  private setKey(addr: number, port: number, slot: number, proto: number): void {
    const k = new DataView(this.key.buffer);
    this.key.fill(0);
    k.setUint32(L.SK_ADDRESS, addr);
    k.setUint16(L.SK_DPORT, port);
    k.setUint16(L.SK_SLOT, slot, true);
    this.key[L.SK_PROTO] = proto;
  }

  private writeFrontend(fe: ServiceFrontend, spec: FrontendSpec, active: number[]): void {
    const addr = parseIPv4(fe.address);
    const proto = L.protoNumber(fe.protocol);
    const v = new DataView(this.value.buffer);
    // Slots first, then the service entry: the datapath never sees a count without its slots.
    for (let i = 0; i < active.length; i++) {
      this.value.fill(0);
      v.setUint32(L.SV_BACKEND_ID, active[i], true);
      v.setUint16(L.SV_REV_NAT, fe.id, true);
      this.setKey(addr, fe.port, i + 1, proto);
      this.check(this.lb.services.update(this.key, 0, this.value, 0, 0), 'service slot');
    }
    if (this.o.maglev) {
      const table = maglevTable(fe.backends.map((b) => ({ id: b.id, name: `${b.ip}:${b.port}` })), this.lb.maglevSize);
      const row = this.lb.maglev.lookupIndex(fe.id);
      if (row >= 0) this.lb.maglev.bytes.set(new Uint8Array(table.buffer), row);
    }
    this.value.fill(0);
    v.setUint32(L.SV_BACKEND_ID, spec.sessionAffinity === 'ClientIP' ? spec.sessionAffinityTimeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT : 0, true);
    v.setUint16(L.SV_COUNT, active.length, true);
    v.setUint16(L.SV_REV_NAT, fe.id, true);
    v.setUint8(L.SV_FLAGS, serviceFlags(fe.type as FrontendType, fe.address, spec));
    v.setUint8(L.SV_FLAGS2, this.o.maglev ? L.SVC_FLAG2_MAGLEV : 0);
    this.setKey(addr, fe.port, 0, proto);
    this.check(this.lb.services.update(this.key, 0, this.value, 0, 0), 'service');
    // Reverse NAT for replies.
    this.value.fill(0);
    v.setUint32(L.RN_ADDRESS, addr);
    v.setUint16(L.RN_PORT, fe.port);
    new DataView(this.kv4.buffer).setUint32(0, fe.id, true);
    this.check(this.lb.revNatMap.update(this.kv4, 0, this.value, 0, 0), 'reverse NAT');
    // Slots beyond the new count go last.
    const prev = this.written.get(fe.id);
    for (let i = active.length + 1; prev && i <= prev.count; i++) {
      this.setKey(addr, fe.port, i, proto);
      this.lb.services.delete(this.key, 0);
    }
    this.written.set(fe.id, { addr, port: fe.port, proto, count: active.length, backends: active });
  }

  private removeFrontend(id: number): void {
    const w = this.written.get(id)!;
    for (let i = 0; i <= w.count; i++) {
      this.setKey(w.addr, w.port, i, w.proto);
      this.lb.services.delete(this.key, 0);
    }
    new DataView(this.kv4.buffer).setUint32(0, id, true);
    this.lb.revNatMap.delete(this.kv4, 0);
    this.written.delete(id);
  }

  /** Backends no frontend uses: kept as terminating while their pod lives (open connections finish), else removed. */
  private sweepBackends(referenced: Set<number>, pods: Pod[]): void {
    const podIPs = new Set(pods.map((p) => p.podIP));
    for (const [name, id] of this.backendIds) {
      if (referenced.has(id)) continue;
      const ip = name.slice(0, name.indexOf(':'));
      new DataView(this.kv4.buffer).setUint32(0, id, true);
      const off = this.lb.backends.lookup(this.kv4, 0);
      if (off < 0) continue;
      if (podIPs.has(ip)) this.lb.backends.view.setUint8(off + L.BE_FLAGS, L.BE_STATE_TERMINATING);
      else this.lb.backends.delete(this.kv4, 0);
    }
  }

  private check(rc: number, what: string): void {
    if (rc < 0) throw new ApiError(507, `${what} map is full (${rc}); raise bpf-lb-map-max`);
  }

  // ---- ids and addresses ------------------------------------------------------------------------

  private async frontendId(ip: string, port: number, protocol: string): Promise<number> {
    return this.id(this.frontendIds, FRONTEND_ID_PREFIX, `${ip}:${port}/${protocol}`);
  }

  private async backendId(ip: string, port: number, protocol: string): Promise<number> {
    const name = `${ip}:${port}/${protocol}`;
    const id = await this.id(this.backendIds, BACKEND_ID_PREFIX, name);
    this.backendNames.set(id, name);
    return id;
  }

  /** A stable id per name, the lowest free one; ids of removed names are not reused (CT may hold them). */
  private async id(ids: Map<string, number>, prefix: string, name: string): Promise<number> {
    const have = ids.get(name);
    if (have) return have;
    const id = ids.size + 1;
    if (id > MAX_ID) throw new ApiError(507, 'no free service or backend id');
    ids.set(name, id);
    await this.kv.put(prefix + name, String(id));
    return id;
  }

  private claimIP(ip: string): string {
    let n: number;
    try {
      n = parseIPv4(ip);
    } catch {
      throw new ApiError(400, `spec.clusterIP: "${ip}" is not an IPv4 address`);
    }
    if (!cidrContains(this.cidr, n)) throw new ApiError(422, `spec.clusterIP: ${ip} is not in the service range ${this.o.serviceCidr}`);
    if (this.usedIps.has(ip)) throw new ApiError(422, `spec.clusterIP: ${ip} is already allocated`);
    this.usedIps.add(ip);
    return ip;
  }

  private allocateIP(): string {
    const reserved = new Set(this.o.reservedIPs);
    for (let i = 1; i < this.cidr.size - 1; i++) {
      const ip = formatIPv4(this.cidr.base + i);
      if (this.usedIps.has(ip) || reserved.has(ip)) continue;
      this.usedIps.add(ip);
      return ip;
    }
    throw new ApiError(507, `service range ${this.o.serviceCidr} is exhausted`);
  }

  /** The service's NodePorts: the requested ones, else the ports it had, else random free ones (refusals name the field). */
  private withNodePorts(key: string, spec: ServiceSpec, old: Stored | undefined): ServiceSpec['ports'] {
    if (!hasNodePorts(spec)) return spec.ports.map(({ nodePort: _drop, ...p }) => p);
    const had = (p: ServiceSpec['ports'][number]) => old?.spec.ports.find((o) => o.port === p.port && (o.protocol ?? 'TCP') === (p.protocol ?? 'TCP'))?.nodePort;
    const ports = this.nodePorts.plan(key, spec.ports.map((p, i) => ({ path: `spec.ports[${i}].nodePort`, want: p.nodePort, had: had(p) })));
    return spec.ports.map((p, i) => ({ ...p, nodePort: ports[i] }));
  }

  private view(s: Stored, pods = this.pods()): Service {
    const frontends: ServiceFrontend[] = frontendAddresses(s.spec, s.clusterIP, this.o.nodeIPs).map((fa) => {
      const id = this.frontendIds.get(`${fa.address}:${fa.port}/${fa.protocol}`) ?? 0;
      const backends: ServiceBackend[] = (this.written.get(id)?.backends ?? []).map((bid) => {
        const name = this.backendNames.get(bid) ?? '';
        const [ip, rest] = name.split(':');
        const pod = pods.find((x) => x.podIP === ip);
        return { id: bid, ip, port: Number(rest?.split('/')[0]), pod: pod ? `${pod.namespace}/${pod.name}` : '', state: 'active' };
      });
      return { id, address: fa.address, port: fa.port, protocol: fa.protocol, type: fa.type, backends };
    });
    return { ...s.spec, clusterIP: s.clusterIP, frontends, createdAt: s.createdAt };
  }
}

const nodePortsOf = (spec: ServiceSpec) => spec.ports.flatMap((p) => (p.nodePort ? [p.nodePort] : []));

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** A service port's target on one pod: a number, or a container port looked up by name. */
function targetPort(target: number | string, pod: Pod, protocol: string): number | undefined {
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(target)) return Number(target);
  return pod.ports?.find((p) => p.name === target && (p.protocol ?? 'TCP') === protocol)?.containerPort;
}

/** The addresses of a service that the node steers to the agent: its externalIPs and LoadBalancer ingress. */
function steeredAddresses(s: Stored): string[] {
  return [...(s.spec.externalIPs ?? []), ...(s.spec.type === 'LoadBalancer' ? s.spec.loadBalancerIngress ?? [] : [])];
}

/** The services by namespace/name, counting their changes (what the cached address list follows). */
class ServiceTable extends Map<string, Stored> {
  generation = 0;
  override set(key: string, value: Stored): this {
    this.generation++;
    return super.set(key, value);
  }
  override delete(key: string): boolean {
    this.generation++;
    return super.delete(key);
  }
}
