// Endpoints: a pod's whole life on this node. Create = namespace + eth0 + address + identity +
// map entries + program array + reader + process, all or nothing; delete = the reverse, leaving
// nothing behind; restore = re-attach to everything a previous agent process left running.
import { pidAlive } from './process.ts';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { native } from '../native/index.ts';
import type { Datapath } from '../dataplane/datapath.ts';
import { securityLabels } from '../identity/labels.ts';
import type { IdentityAllocator } from '../identity/allocator.ts';
import type { Ipam } from './ipam.ts';
import type { KVStore, KVWatch } from './kvstore.ts';
import { ApiError, type ContainerPort, type Endpoint, type Pod, type PodProcessSpec, type PodProcessStatus, type PodSpec } from './types.ts';
import type { PolicyEndpoint } from './policy.ts';
import { POD_IFNAME, type PodNetwork } from './podnet.ts';
import { EndpointMaps, HOST_IDENTITY } from './endpoint-maps.ts';

const MAX_ENDPOINT_ID = 4095;
/** ciliary/endpoints/<node>/<namespace>/<pod>: every node's endpoints. */
const ENDPOINTS_PREFIX = 'ciliary/endpoints/';

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

/** Restart backoff: 1 s, 2 s, 4 s, ... at most 30 s; a process that ran this long starts the series again. */
const BACKOFF_MAX_MS = 30_000;
const BACKOFF_RESET_MS = 60_000;
/** How often processes adopted from a previous agent (not our children) are checked. */
const ADOPTED_POLL_MS = 1000;
/** Runs argv with the pod's hostname in a UTS namespace of its own ($0 is the hostname). */
const UTS_WRAPPER = ['unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"'];

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
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export class EndpointManager {
  private readonly records = new Map<string, EndpointRecord>(); // "ns/name" → record
  private readonly fds = new Map<number, number>(); // endpoint id → TUN fd
  private readonly busy = new Set<string>(); // pods being created or deleted
  /** Per pod: process state the kvstore does not need (backoff timers, consecutive failures). */
  private readonly procs = new Map<string, { timer?: NodeJS.Timeout; failures: number; waiting: boolean; adopted: boolean }>();
  private adoptedTimer?: NodeJS.Timeout;
  hostEndpointID = 0;
  private readonly maps: EndpointMaps;
  private watch?: KVWatch;

  constructor(
    private readonly o: EndpointManagerOptions,
    private readonly kv: KVStore,
    private readonly dp: Datapath,
    private readonly ipam: Ipam,
    private readonly identities: IdentityAllocator,
    private readonly log: Logger,
  ) {
    this.maps = new EndpointMaps(dp);
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
    this.maps.plumbHost(id, fd, ifindex, [this.ipam.routerIP, this.o.nodeIP].filter(Boolean), this.ipam.routerIP);
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
    const host: Endpoint = {
      id: this.hostEndpointID, podName: '', identity: HOST_IDENTITY, labels: ['reserved:host'], ipv4: this.ipam.routerIP,
      ifindex: this.dp.epIfindex[this.hostEndpointID], ifname: 'cilium_host', state: 'ready', policyIngress: 'Disabled', policyEgress: 'Disabled', isHost: true,
    };
    const pods = [...this.records.values()].map((r): Endpoint => {
      const e = this.o.enforcement?.(r.id) ?? { ingress: false, egress: false };
      return {
        id: r.id, podName: `${r.namespace}/${r.name}`, identity: r.identity, labels: r.securityLabels, ipv4: r.podIP,
        ifindex: r.ifindex, ifname: POD_IFNAME, state: 'ready', policyIngress: e.ingress ? 'Enabled' : 'Disabled', policyEgress: e.egress ? 'Enabled' : 'Disabled', isHost: false,
      };
    });
    return [host, ...pods].sort((a, b) => a.id - b.id);
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
    try {
      const id = await this.allocateId();
      undo.push(() => this.kv.delete(`${this.prefix}id/${id}`).then(() => undefined));
      const podIP = await this.ipam.allocate(key);
      undo.push(() => this.ipam.release(podIP));
      const labels = spec.labels ?? {};
      const secLabels = securityLabels(labels, namespace, this.o.cluster);
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
      if (r.command && this.o.processes) r.pid = this.startProcess(r);
      undo.push(() => this.stopProcess(r));
      await this.kv.put(this.prefix + key, JSON.stringify(r));
      this.log.info({ pod: key, id, ip: podIP, identity }, 'endpoint created');
      await this.o.onChange?.();
      return this.toPod(r);
    } catch (e) {
      for (const u of undo.reverse()) await Promise.resolve(u()).catch((err) => this.log.warn({ err }, 'cleanup step failed'));
      if (e instanceof ApiError) throw e;
      throw new ApiError(500, `creating pod "${key}": ${(e as Error).message}`);
    } finally {
      this.busy.delete(key);
    }
  }

  async delete(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const r = this.records.get(key);
    if (!r) throw new ApiError(404, `pod "${key}" not found`);
    if (this.busy.has(key)) throw new ApiError(409, `pod "${key}" is busy`);
    this.busy.add(key);
    try {
      this.records.delete(key);
      clearTimeout(this.procs.get(key)?.timer);
      this.procs.delete(key);
      await this.stopProcess(r);
      this.unplumb(r);
      await this.o.podNetwork.delete(r.netns);
      rmSync(this.logPath(r), { force: true });
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
        this.adopt(r);
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

  /**
   * Follows the endpoints of the other nodes in the store: their pod addresses enter the ipcache with
   * their identity (and leave it with them), so policy knows a remote peer.
   */
  async follow(): Promise<void> {
    const remote = new Map<string, string>(); // store key → pod IP
    this.watch = this.kv.watch(ENDPOINTS_PREFIX, (e) => {
      const [node, first] = e.key.slice(ENDPOINTS_PREFIX.length).split('/');
      if (node === this.o.node || first === 'id' || first === 'host') return;
      const ip = remote.get(e.key);
      if (ip !== undefined) this.maps.setIpcache(`${ip}/32`, 0);
      remote.delete(e.key);
      if (e.type === 'delete') return;
      try {
        const r = JSON.parse(e.value) as EndpointRecord;
        this.maps.setIpcache(`${r.podIP}/32`, r.identity);
        remote.set(e.key, r.podIP);
      } catch (err) {
        this.log.warn({ key: e.key, err: (err as Error).message }, 'remote endpoint record does not parse; skipped');
      }
    });
    await this.watch.ready;
  }

  close(): void {
    this.watch?.close();
  }

  /** Stops reading devices; pods, devices and maps stay for the next agent process. */
  shutdown(): void {
    clearInterval(this.adoptedTimer);
    for (const p of this.procs.values()) clearTimeout(p.timer);
    this.procs.clear();
    this.dp.detachAll();
    for (const fd of this.fds.values()) native.closeFd(fd);
    this.fds.clear();
  }

  // ---- pieces ----------------------------------------------------------------------------------

  private async allocateId(): Promise<number> {
    for (let tries = 0; tries < 10_000; tries++) {
      const id = 1 + Math.floor(Math.random() * MAX_ENDPOINT_ID);
      if (await this.kv.createOnly(`${this.prefix}id/${id}`, '1')) return id;
    }
    throw new Error('no free endpoint id');
  }

  /** What policy resolution needs to know about each pod endpoint. */
  policyEndpoints(): PolicyEndpoint[] {
    return [...this.records.values()].map((r) => ({
      id: r.id, identity: r.identity, labels: r.securityLabels,
      namedPorts: Object.fromEntries((r.ports ?? []).filter((p) => p.name).map((p) => [p.name!, { port: p.containerPort, protocol: p.protocol ?? 'TCP' }])),
    }));
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

  private logPath(r: EndpointRecord): string {
    return join(this.o.stateDir, 'pods', `${r.namespace}_${r.name}.log`);
  }

  /** Path of a pod's log file (stdout and stderr of every start, appended). */
  podLogPath(namespace: string, name: string): string | undefined {
    const r = this.records.get(`${namespace}/${name}`);
    return r && this.logPath(r);
  }

  /** The pod's command, in its namespace, in its own session so it outlives an agent restart. */
  private startProcess(r: EndpointRecord): number {
    mkdirSync(join(this.o.stateDir, 'pods'), { recursive: true });
    const out = openSync(this.logPath(r), 'a');
    const key = `${r.namespace}/${r.name}`;
    const hostname = r.process?.hostname ?? r.name;
    try {
      const argv = ['netns', 'exec', r.netns, ...UTS_WRAPPER, hostname, ...r.command!];
      const env = { ...process.env, HOSTNAME: hostname, ...(r.process?.env ?? {}) };
      const child = spawn('ip', argv, { detached: true, stdio: ['ignore', out, out], env });
      child.unref();
      child.on('error', (err) => this.log.warn({ pod: key, err: err.message }, 'pod command failed'));
      const pid = child.pid ?? 0;
      child.on('exit', (code, signal) => this.processExited(r, pid, code ?? (signal ? 128 : 1)));
      r.startedAt = new Date().toISOString();
      r.exitCode = undefined;
      const p = this.procState(key);
      p.waiting = false;
      p.adopted = false;
      return pid;
    } finally {
      closeSync(out);
    }
  }

  private procState(key: string) {
    let p = this.procs.get(key);
    if (!p) this.procs.set(key, (p = { failures: 0, waiting: false, adopted: false }));
    return p;
  }

  /** A pod process ended: restart it after the backoff when its restart policy says so. */
  private processExited(r: EndpointRecord, pid: number, code: number | undefined): void {
    const key = `${r.namespace}/${r.name}`;
    if (this.records.get(key) !== r || r.pid !== pid) return; // deleted, or already replaced
    r.pid = undefined;
    r.exitCode = code;
    const policy = r.process?.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && code !== 0);
    this.log.info({ pod: key, pid, exitCode: code, restart }, 'pod process exited');
    const p = this.procState(key);
    if (!restart) {
      void this.saveRecord(r);
      return;
    }
    const ran = r.startedAt ? Date.now() - Date.parse(r.startedAt) : 0;
    if (ran >= BACKOFF_RESET_MS) p.failures = 0;
    const delay = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** p.failures);
    p.failures++;
    p.waiting = true;
    p.timer = setTimeout(() => {
      p.timer = undefined;
      if (this.records.get(key) !== r || !this.procs.has(key)) return;
      try {
        r.restarts = (r.restarts ?? 0) + 1;
        r.pid = this.startProcess(r);
      } catch (e) {
        this.log.warn({ pod: key, err: (e as Error).message }, 'pod restart failed');
      }
      void this.saveRecord(r);
    }, delay);
    p.timer.unref();
    void this.saveRecord(r);
  }

  private async saveRecord(r: EndpointRecord): Promise<void> {
    const key = `${r.namespace}/${r.name}`;
    if (this.records.get(key) !== r) return;
    await this.kv.put(this.prefix + key, JSON.stringify(r)).catch((err: Error) => this.log.warn({ pod: key, err: err.message }, 'saving endpoint failed'));
  }

  /** After an agent restart: watch the previous agent's process by pid (or start it again if it is gone). */
  private adopt(r: EndpointRecord): void {
    if (!r.command) return;
    const key = `${r.namespace}/${r.name}`;
    const p = this.procState(key);
    if (r.pid && pidAlive(r.pid)) {
      p.adopted = true;
    } else if (r.pid) {
      this.processExited(r, r.pid, undefined);
    }
    this.adoptedTimer ??= setInterval(() => {
      for (const [k, st] of this.procs) {
        const rec = this.records.get(k);
        if (!st.adopted || !rec?.pid) continue;
        if (!pidAlive(rec.pid)) {
          st.adopted = false;
          this.processExited(rec, rec.pid, undefined);
        }
      }
    }, ADOPTED_POLL_MS);
    this.adoptedTimer.unref();
  }

  private processStatus(r: EndpointRecord): PodProcessStatus | undefined {
    if (!r.command || !this.o.processes) return undefined;
    const p = this.procs.get(`${r.namespace}/${r.name}`);
    const restarts = r.restarts ?? 0;
    let status: string;
    if (r.pid) status = 'Running';
    else if (p?.waiting) status = (p.failures ?? 0) > 1 ? 'CrashLoopBackOff' : r.exitCode === 0 ? 'Completed' : 'Error';
    else status = r.exitCode === 0 ? 'Completed' : 'Error';
    return { status, restarts, ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}), ...(r.startedAt ? { startedAt: r.startedAt } : {}) };
  }

  private async stopProcess(r: EndpointRecord): Promise<void> {
    if (!r.pid) return;
    const alive = () => {
      try {
        process.kill(-r.pid!, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      process.kill(-r.pid, 'SIGTERM');
    } catch {
      return;
    }
    for (let i = 0; i < 50 && alive(); i++) await new Promise((res) => setTimeout(res, 100));
    if (alive()) process.kill(-r.pid, 'SIGKILL');
  }

  private toPod(r: EndpointRecord): Pod {
    return {
      name: r.name, namespace: r.namespace, labels: r.labels, node: this.o.node, podIP: r.podIP, endpointID: r.id, state: 'ready',
      netns: r.netns, ifindex: r.ifindex, createdAt: r.createdAt, command: r.command, ports: r.ports, pid: r.pid,
      ...(r.process ? { process: r.process } : {}),
      ...(r.command && this.o.processes ? { processStatus: this.processStatus(r) } : {}),
    };
  }
}

