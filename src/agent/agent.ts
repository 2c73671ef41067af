// The agent: wires config, kvstore, maps, datapath, host device and endpoints, and answers the API.
import type { Logger } from 'pino';
import { native } from '../native/index.ts';
import type { MapRegistry } from '../maps/index.ts';
import { Datapath } from '../dataplane/datapath.ts';
import { VERDICT_LOG_EGRESS, VERDICT_LOG_INGRESS } from '../dataplane/lib/policy.ts';
import { dumpEntries, formatterFor } from '../maps/cilium/index.ts';
import { durationMs, type AgentConfig } from '../control/config.ts';
import type { KVStore } from '../control/kvstore.ts';
import { claimPodCidr, Ipam } from '../control/ipam.ts';
import { WriteBehindKVStore } from '../control/kvstore-offline.ts';
import { offlineKeys } from '../control/offline-keys.ts';
import { formatCidr, parseIPv4 } from '../wire/ip-text.ts';
import { linuxPlatform, type AgentPlatform } from './platform.ts';
import { EndpointManager } from '../control/endpoints.ts';
import { NODE_LEASE_TTL, nodeLabels, registerNode } from '../control/nodes.ts';
import { BandwidthManager } from '../control/bandwidth.ts';
import { IdentityAllocator } from '../identity/allocator.ts';
import { timeoutsFromConfig } from '../conntrack/timeouts.ts';
import { ctListLines } from '../maps/cilium/ct.ts';
import { ServiceManager } from '../nat/services.ts';
import { lbListRows } from '../maps/cilium/lb.ts';
import { ensureClusterDns, KUBE_DNS_IP } from './dns.ts';
import { installProxyUpstreamRouting } from '../control/proxy-upstream-routing.ts';
import { installHostFirewallRouting } from '../control/host-firewall-routing.ts';
import { followedByPolicy, nodeLabelStrings, PolicyManager, serviceInfosOf } from '../control/policy.ts';
import type { DnsResponseEvent, FqdnCacheRow } from '../fqdn/cache.ts';
import { ResourceManager } from '../control/resources/manager.ts';
import { ProxyManager } from '../proxy/http/manager.ts';
import { Observability } from '../observe/metrics/index.ts';
import { startTraceSession, traceFilter } from '../observe/trace/session.ts';
import type { TraceRequest, TraceSink } from '../observe/trace/types.ts';
import type { AgentFacade, AgentStatus, DatapathFeatures, Endpoint, MapEntryView, MapSummary, MonitorEvent, Pod, Service } from '../control/types.ts';
import { Hubble } from '../observe/hubble/observer.ts';
import { AgentResolver } from '../observe/hubble/resolver.ts';
import { startWebServer, type WebServer } from '../observe/web/server.ts';
import { startHubbleGrpc, type HubbleGrpc } from '../observe/hubble/grpc/index.ts';
import { ManagerBackend } from '../kube/backend-manager.ts';
import { startKubeApiServer, type KubeApiServer } from '../kube/server.ts';
import { MultiNode } from '../control/multinode.ts';
import { tunnelSpec } from '../maps/cilium/tunnel.ts';
import type { HashMap } from '../maps/index.ts';
import { installForwardAccept, removeForwardAccept } from '../control/iptables-forward.ts';
import { podMtu, startOverlay, TUNNEL_IFNAME, type Overlay } from '../dataplane/overlay.ts';
import { Masquerade } from '../nat/masquerade.ts';
import { natListLines } from '../maps/cilium/nat.ts';
import { LBIPAM } from '../control/lbipam/controller.ts';
import { L2Announcer } from '../control/l2announce/announcer.ts';
import { announceableDevices, ProxyArpResponder } from '../control/l2announce/proxy-arp.ts';
import { advertisedAddress, followKubeApiServerIPs, KUBERNETES_SVC_IP, KubernetesServiceController } from '../control/kubernetes-service.ts';
import type { KVLease } from '../control/kvstore.ts';

export const VERSION = '0.1.0';
const CT_GC_BUDGET = 16384;

export class Agent implements AgentFacade {
  readonly nodeName: string;
  private readonly started = Date.now();
  private kv!: KVStore;
  private registry!: MapRegistry;
  private dp!: Datapath;
  private ipam!: Ipam;
  private endpointsMgr!: EndpointManager;
  private services!: ServiceManager;
  private policy!: PolicyManager;
  private bandwidth!: BandwidthManager;
  private identities?: IdentityAllocator;
  private proxies?: ProxyManager;
  private hostFd = -1;
  private gcTimer?: NodeJS.Timeout;
  private observability?: Observability;
  private web?: WebServer;
  private hubbleGrpc?: HubbleGrpc;
  private kubeApi?: KubeApiServer;
  private multiNode?: MultiNode;
  private overlay?: Overlay;
  private masquerade?: Masquerade;
  /** CILIUM_FORWARD is installed (removed at stop). */
  private forwardAccept = false;
  private lbipam?: LBIPAM;
  private l2?: L2Announcer;
  private clusterDns?: Promise<void>;
  private lease?: KVLease;
  private kubernetesService?: KubernetesServiceController;
  private stopFollowingApiServers?: () => void;

  constructor(private readonly cfg: AgentConfig, private readonly log: Logger, private readonly platform: AgentPlatform = linuxPlatform()) {
    this.nodeName = cfg['node-name'];
  }

  async start(): Promise<void> {
    const cfg = this.cfg;
    const stateDir = cfg['state-dir'];
    const platform = this.platform;
    const store = await platform.openStore(cfg);
    // Over etcd, a pod created here while the store is away is written to it when it returns.
    this.kv = cfg.kvstore === 'etcd'
      ? await WriteBehindKVStore.wrap(store, offlineKeys(this.nodeName), (key, err) => this.log.warn({ key, err: err.message }, 'kvstore: a queued write was refused'), stateDir)
      : store;
    this.registry = platform.maps(cfg);
    this.dp = new Datapath(this.registry, {
      monitorCapacity: cfg['monitor-queue-size'],
      ct: { tcp: cfg['bpf-ct-global-tcp-max'], any: cfg['bpf-ct-global-any-max'] },
      ctTimeouts: timeoutsFromConfig(cfg as unknown as Record<string, unknown>),
      lb: { services: cfg['bpf-lb-map-max'], backends: cfg['bpf-lb-map-max'], maglevTableSize: cfg['bpf-lb-maglev-table-size'], maglevServices: 1024 },
      natMax: cfg['bpf-nat-global-max'],
    });
    // CT garbage collection in bounded slices: the datapath never waits for a full sweep.
    this.gcTimer = setInterval(() => this.dp.ct.gc(CT_GC_BUDGET), 1000);
    this.gcTimer.unref();
    this.bandwidth = new BandwidthManager(this.dp.edt, cfg['enable-bandwidth-manager'], durationMs(cfg['bpf-bandwidth-horizon'])!, this.log);
    const cidr = await claimPodCidr(this.kv, this.nodeName, cfg['ipv4-pod-cidr'], cfg['cluster-pool-ipv4-cidr'], cfg['cluster-pool-ipv4-mask-size']);
    this.ipam = await Ipam.open(this.kv, this.nodeName, cidr);
    // One lease for this node: its registration and its identity claims end with it.
    const lease = (this.lease = await this.kv.grantLease(NODE_LEASE_TTL));
    await registerNode(this.kv, lease, {
      name: this.nodeName, nodeIP: cfg['node-ip'], podCIDR: formatCidr(cidr), routerIP: this.ipam.routerIP, version: VERSION, labels: nodeLabels(this.nodeName, cfg['node-labels']),
    });
    const hostLabels = ['reserved:host', ...nodeLabelStrings(nodeLabels(this.nodeName, cfg['node-labels']))];
    const host = await platform.hostDevice(this.ipam.routerIP, formatCidr(cidr), cfg);
    this.hostFd = host.fd;
    const identities = (this.identities = new IdentityAllocator(this.kv, this.nodeName, undefined, lease));
    await identities.load();
    this.endpointsMgr = new EndpointManager(
      {
        node: this.nodeName, nodeIP: cfg['node-ip'], cluster: cfg['cluster-name'], stateDir, mtu: podMtu(cfg), offloads: cfg['enable-offloads'], dnsIP: KUBE_DNS_IP,
        policyMapMax: cfg['bpf-policy-map-max'], podNetwork: platform.pods, processes: platform.processes,
        hostFirewall: cfg['enable-host-firewall'] ? { labels: hostLabels } : undefined,
        onChange: async () => {
          await this.services.syncAll();
          this.policy.regenerate();
          await this.multiNode?.publish(this.endpointsMgr.list(), this.endpointsMgr.endpoints());
        },
        enforcement: (id) => this.policy.enforcement(id),
        onRemoved: (id) => {
          this.policy.endpointRemoved(id);
          this.bandwidth.removed(id);
        },
      },
      this.kv, this.dp, this.ipam, identities, this.log,
    );
    this.dp.proxy.routerIP = parseIPv4(this.ipam.routerIP);
    if (cfg['enable-l7-proxy'] && platform.sockets) {
      this.proxies = new ProxyManager(this.ipam.routerIP, this.dp.proxy, (e) => this.dp.events.publishAccessLog(e, this.describePeer(e.client.ip), this.describePeer(e.server.ip)), this.log,
        (id) => this.dp.epIdentity[id] ?? 0);
    }
    this.policy = new PolicyManager({
      proxies: this.proxies,
      kv: this.kv, log: this.log, enforcement: cfg['policy-enforcement-mode'],
      endpoints: () => this.endpointsMgr.policyEndpoints(),
      identities: () => identities.known,
      policyMap: (id) => this.dp.policy[id],
      setVerdictLogFilter: (id, ingress, egress) => (this.dp.verdictLogFilter[id] = (ingress ? VERDICT_LOG_INGRESS : 0) | (egress ? VERDICT_LOG_EGRESS : 0)),
      setIpcache: (cidr, id) => this.endpointsMgr.setIpcache(cidr, id),
      services: () => (this.resources ? serviceInfosOf(this.resources.list('Service')) : []),
      fqdnMinTtl: cfg['tofqdns-min-ttl'],
      hostNodeLabels: cfg['enable-node-selector-labels'] ? hostLabels : undefined,
    });
    // toFQDNs learns from every answer the DNS proxy forwards.
    this.proxies?.dnsResponses.onDnsResponse((r) => this.observeDnsResponse(r));
    await this.endpointsMgr.setupHost(host.fd, host.ifindex);
    // Masquerade and the steering of replies and NodePorts need the node's real devices.
    if (host.fd >= 0) this.masquerade = await Masquerade.start(this.dp, cfg, formatCidr(cidr), this.log);
    if (cfg['enable-host-firewall'] && this.masquerade?.device !== undefined && cfg['node-ip']) {
      await installHostFirewallRouting(this.masquerade.device, cfg['node-ip'], this.log).catch((e: Error) => this.log.warn({ err: e.message }, 'host firewall: not steered from the native device; only pods\' traffic is filtered'));
    }
    // The proxies' upstream leg speaks as its client pod beyond this node too (as the steering, only with a native device).
    if (this.proxies && this.masquerade?.device !== undefined) {
      await installProxyUpstreamRouting(this.ipam.routerIP, this.log).catch((e: Error) => this.log.warn({ err: e.message }, 'proxy: upstream routing not installed; its leg leaves from the router IP'));
    }
    this.overlay = startOverlay(this.dp, cfg, this.log);
    if (host.fd >= 0) this.forwardAccept = await installForwardAccept(this.overlay?.tunnelGso ? TUNNEL_IFNAME : undefined, this.log);
    this.services = new ServiceManager(this.kv, this.dp.lb, () => [...this.endpointsMgr.list(), ...(this.multiNode?.remoteBackendPods() ?? [])], {
      serviceCidr: cfg['service-cluster-ip-range'], maglev: cfg['bpf-lb-algorithm'] === 'maglev', reservedIPs: [KUBERNETES_SVC_IP, KUBE_DNS_IP],
      node: this.nodeName, nodeIPs: cfg['node-ip'] ? [cfg['node-ip']] : [],
      onSteeredFrontends: (f) => this.masquerade?.steerFrontends(f, this.log),
    }, this.log);
    const restored = await this.endpointsMgr.restore();
    this.multiNode = await MultiNode.start(this.kv, {
      node: this.nodeName, nodeIP: cfg['node-ip'], clusterId: cfg['cluster-id'], podCidr: formatCidr(cidr), routingMode: cfg['routing-mode'],
      autoDirectNodeRoutes: cfg['auto-direct-node-routes'], podMtu: podMtu(cfg), ipcache: this.dp.ipcache, tunnel: this.registry.open(tunnelSpec() as never) as HashMap, lease,
      onRemotePods: () => void this.services.syncAll().catch((e: Error) => this.log.warn({ err: e.message }, 'services: resync after remote pods failed')),
      nodeIdentity: cfg['enable-node-selector-labels'] ? { up: (n, api) => this.policy.nodeIdentity(n.name, n.labels, api), down: (n) => this.policy.nodeGone(n.name) } : undefined,
    }, this.log);
    await this.multiNode.publish(this.endpointsMgr.list(), this.endpointsMgr.endpoints());
    await this.services.restore();
    await this.policy.restore();
    // From now on: identities other nodes allocate are selected by their labels.
    identities.onChange = () => this.policy.regenerate(true);
    this.resources = new ResourceManager({
      node: this.nodeName, kv: this.kv, log: this.log, podEvictionTimeoutMs: durationMs(cfg['pod-eviction-timeout']),
      pods: {
        list: () => this.endpointsMgr.list(),
        create: (spec) => this.endpointsMgr.create(spec),
        delete: (ns, name) => this.endpointsMgr.delete(ns, name),
        logPath: (ns, name) => this.endpointsMgr.podLogPath(ns, name),
        annotated: (ns, name, annotations) => {
          const pod = this.endpointsMgr.get(ns, name);
          if (pod) this.bandwidth.apply(pod.endpointID, annotations);
        },
      },
      services: followedByPolicy(this.services, () => this.policy.regenerate()),
      policies: { import: (objects) => this.policy.import(objects), list: () => this.policy.list(), delete: (kind, ns, name) => this.policy.delete(kind, ns, name) },
      leases: () => this.l2?.leaseViews() ?? [],
    });
    await this.resources.restore();
    this.stopFollowingApiServers = followKubeApiServerIPs(this.resources, (ips) => this.kubeApiServersAt(ips));
    this.lbipam = new LBIPAM({ kv: this.kv, node: this.nodeName, log: this.log, leaseTtlSeconds: NODE_LEASE_TTL, resources: this.resources });
    await this.lbipam.start();
    if (cfg['enable-l2-announcements']) {
      this.l2 = new L2Announcer({
        kv: this.kv, node: this.nodeName, nodeLabels: nodeLabels(this.nodeName, cfg['node-labels']), log: this.log, resources: this.resources,
        leaseDurationMs: durationMs(cfg['l2announcements-lease-duration'])!, renewDeadlineMs: durationMs(cfg['l2announcements-renew-deadline'])!,
        retryPeriodMs: durationMs(cfg['l2announcements-retry-period'])!, responder: new ProxyArpResponder(), devices: announceableDevices,
      });
      await this.l2.start();
    }
    // In the background: the API need not wait for the CoreDNS pods to start.
    if (platform.processes) this.clusterDns = ensureClusterDns(this.resources, this.nodeName, cfg['resolv-conf'], this.log);
    this.startHubble();
    if (platform.sockets) await this.startServers();
    this.log.info({ node: this.nodeName, podCIDR: formatCidr(cidr), routerIP: this.ipam.routerIP, restored }, 'agent started');
  }

  /** Hubble's gRPC API and relay, metrics, the flow exporter, the Hubble-UI-like page and the Kubernetes API subset. */
  private async startServers(): Promise<void> {
    const cfg = this.cfg;
    if (this.hubble) this.hubbleGrpc = await startHubbleGrpc(cfg, this.hubble, { nodeName: this.nodeName, version: VERSION, log: this.log });
    this.observability = await Observability.start(cfg, {
      metricsSnapshot: () => this.dp.metricsSnapshot(), listMaps: () => this.listMaps(), listEndpoints: () => this.listEndpoints(),
      listServices: () => this.listServices(), unreachableNodes: () => this.multiNode?.unreachableNodes() ?? 0, subscribeEvents: (cb) => this.dp.events.subscribeRaw(cb), version: VERSION,
    }, this.log);
    if (this.hubble && this.observability.wantsFlows) this.hubble.onFlow(this.observability.onFlow);
    // The Hubble-UI-like page (hubble-ui-listen-address): a busy port is logged, not fatal.
    if (cfg['hubble-ui-listen-address']) {
      // Every node's flows where this agent runs the relay, else this node's.
      this.web = await startWebServer({ address: cfg['hubble-ui-listen-address'], flows: () => this.hubbleRelay?.flows ?? this.hubble, log: this.log })
        .catch((err: Error) => { this.log.warn({ err: err.message }, 'hubble ui: not serving'); return undefined; });
    }
    // The Kubernetes API subset for kubectl (kube-apiserver-listen-address): a busy port is logged, not fatal.
    if (cfg['kube-apiserver-listen-address']) {
      this.kubeApi = await startKubeApiServer({
        address: cfg['kube-apiserver-listen-address'], stateDir: cfg['state-dir'], backend: new ManagerBackend(this.resources, this, this.kv), log: this.log, serviceIP: KUBERNETES_SVC_IP,
      }).catch((err: Error) => { this.log.warn({ err: err.message }, 'kube-apiserver: not serving'); return undefined; });
    }
    // As kube-apiserver: the API it serves is the kubernetes service's endpoint (unless pods cannot reach its address).
    const self = this.kubeApi && advertisedAddress(cfg['kube-apiserver-listen-address'], cfg['node-ip']);
    if (this.kubeApi && !self) this.log.warn({ address: cfg['kube-apiserver-listen-address'] }, 'kube-apiserver: listening where pods cannot reach it; not an endpoint of default/kubernetes');
    if (self) {
      this.kubernetesService = new KubernetesServiceController({ kv: this.kv, lease: this.lease!, node: this.nodeName, self, resources: this.resources, log: this.log });
      await this.kubernetesService.start().catch((err: Error) => this.log.warn({ err: err.message }, 'kubernetes service: not kept'));
    }
  }

  /** The kubernetes service's endpoints: those addresses are kube-apiserver in the ipcache (this node's: the host identity carries the label). */
  private kubeApiServersAt(ips: string[]): void {
    this.multiNode?.setKubeApiServers(ips);
    const remoteNodes = new Set(this.multiNode?.nodes().filter((n) => n.name !== this.nodeName).map((n) => n.nodeIP));
    this.policy.setKubeApiServer({ host: ips.includes(this.cfg['node-ip']), remoteNode: ips.some((ip) => remoteNodes.has(ip)) });
  }

  /** Stops the datapath; pods, devices and pinned maps stay for the next agent process. */
  async stop(): Promise<void> {
    clearInterval(this.gcTimer);
    await this.masquerade?.close(this.log);
    if (this.forwardAccept) await removeForwardAccept();
    await this.l2?.close();
    await this.lbipam?.close();
    await this.clusterDns;
    this.stopFollowingApiServers?.();
    await this.kubernetesService?.close();
    await this.resources?.close();
    this.services?.close();
    this.policy?.close();
    this.identities?.close();
    this.multiNode?.close();
    await this.observability?.close();
    await this.web?.close();
    await this.hubbleGrpc?.close();
    await this.kubeApi?.close();
    await this.proxies?.close();
    await this.endpointsMgr?.shutdown();
    this.overlay?.close();
    if (this.hostFd >= 0) native.closeFd(this.hostFd);
    this.hostFd = -1;
    await this.kv?.close();
  }

  status(): AgentStatus {
    const eps = this.endpointsMgr.endpoints();
    const io = native.ioStats();
    return {
      node: this.nodeName,
      nodeIP: this.cfg['node-ip'],
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      kvstore: this.kv.health(),
      ipam: { cidr: formatCidr(this.ipam.cidr), allocated: this.ipam.allocated },
      routerIP: this.ipam.routerIP,
      features: this.features(),
      ...(this.cfg['enable-bandwidth-manager'] ? { edtQueues: this.bandwidth.stats() } : {}),
      endpoints: { total: eps.length, ready: eps.filter((e) => e.state === 'ready').length },
      maps: this.listMaps(),
      datapath: {
        devices: eps.length, rxPackets: io.rxPackets, rxBytes: io.rxBytes, txPackets: io.txPackets, txBytes: io.txBytes,
        tunnelGsoTx: io.txTunnelGso, tunnelGsoRx: io.rxTunnelGso,
        ...this.dp.totals(),
      },
      controllers: { total: 0, failing: 0 },
    };
  }

  /** What runs: the tunnel when its socket is open, else routing as the node registry sees it; masquerading when BPF masquerade runs; NodePort when its traffic is steered into the datapath. */
  private features(): DatapathFeatures {
    const maglev = this.cfg['bpf-lb-algorithm'] === 'maglev';
    const masquerade = this.masquerade?.status();
    // NodePort frontends are on this node's address; its traffic reaches them through the steering rules.
    const steered = this.masquerade?.steered === true && this.cfg['node-ip'] !== '';
    return {
      ...(masquerade ? { masquerade } : {}),
      ...(this.overlay ? { routing: 'tunnel', tunnelProtocol: 'vxlan', ...(this.overlay.tunnelGso ? { tunnelGso: TUNNEL_IFNAME } : {}) } : this.multiNode?.routing() ?? { routing: 'native' }),
      monitor: { cpus: 1, ringEvents: this.dp.events.capacity },
      services: { clusterIP: true, nodePort: steered, loadBalancer: true, externalIPs: true, hostPort: steered },
      ...(steered ? { nodePortRange: this.services.nodePorts.range, nativeDevice: this.masquerade!.device } : {}),
      backendSelection: maglev ? { algorithm: 'maglev', maglevTableSize: this.dp.lb.maglevSize } : { algorithm: 'random' },
      ...(this.proxies ? { proxy: { redirects: this.proxies.count, ports: '10000-20000' } } : {}),
      hubble: this.hubble !== undefined,
      bandwidthManager: this.bandwidth.statusText(this.cfg['node-ip']),
      ...(this.cfg['enable-host-firewall'] ? { hostFirewall: true } : {}),
    };
  }

  config(): Record<string, unknown> {
    return { ...this.cfg };
  }

  listNodes() {
    return this.multiNode?.nodes() ?? [];
  }

  /** Pods on the other nodes as their agents published them (address, identity, labels). */
  remotePods() {
    return this.multiNode?.remotePods() ?? [];
  }

  listPods(): Pod[] {
    return this.endpointsMgr.list();
  }

  getPod(namespace: string, name: string): Pod | undefined {
    return this.endpointsMgr.get(namespace, name);
  }

  listEndpoints(): Endpoint[] {
    return this.endpointsMgr.endpoints();
  }

  getEndpoint(id: number): Endpoint | undefined {
    const ep = this.listEndpoints().find((e) => e.id === id);
    const limit = this.bandwidth.limitOf(id);
    return ep && limit ? { ...ep, egressBandwidth: limit } : ep;
  }

  listMaps(): MapSummary[] {
    return this.registry.openAll().map((m) => m.info()).sort((a, b) => a.name.localeCompare(b.name));
  }

  dumpMap(name: string): MapEntryView[] | undefined {
    if (!this.registry.get(name) && !this.registry.names().includes(name)) return undefined;
    return dumpEntries(this.registry.get(name) ?? this.registry.open(this.registry.specOnDisk(name)));
  }

  /** Endpoint id, identity and labels of an address, for L7 event lines. */
  private describePeer(ip: string): { id: number; identity: number; labels: string[] } {
    const ep = this.endpointsMgr.endpointAt(ip);
    if (ep) return ep;
    const identity = this.dp.lookupIdentity(parseIPv4(ip));
    return { id: 0, identity, labels: this.policy.allIdentities().get(identity) ?? [] };
  }

  listServices(): Service[] {
    return this.services.list();
  }

  hostPortFrontends() {
    return this.services.hostPorts();
  }

  serviceAddresses() {
    return this.services.addresses();
  }

  getService(namespace: string, name: string): Service | undefined {
    return this.services.get(namespace, name);
  }

  lbList(revnat: boolean): Array<[string, string]> {
    const lb = this.dp.lb;
    return lbListRows(lb.services, lb.backends, lb.revNatMap, revnat);
  }

  ctList(): string[] {
    return ctListLines([this.dp.ct.tcp, this.dp.ct.any]);
  }

  ctFlush(): number {
    return this.dp.ct.flush();
  }

  natList(): string[] {
    return natListLines(this.dp.nat.map);
  }

  natFlush(): number {
    return this.dp.nat.flush();
  }

  listPolicies() {
    return { revision: this.policy.repo.revision, policies: this.policy.list() };
  }

  bpfPolicy(endpointID: number): string | undefined {
    return this.policy.format(endpointID);
  }

  listIdentities(): Array<{ id: number; labels: string[] }> {
    return [...this.policy.allIdentities()].map(([id, labels]) => ({ id, labels })).sort((a, b) => a.id - b.id);
  }

  ipList(): Array<{ prefix: string; identity: number; labels: string[]; source: string }> {
    const ids = this.policy.allIdentities();
    return this.dp.ipcache.dump().map((e) => {
      const { key } = formatterFor('cilium_ipcache')(e.key, e.value);
      const identity = new DataView(e.value.buffer, e.value.byteOffset).getUint32(0, true);
      const source = identity === 2 && key === '0.0.0.0/0' ? 'default' : identity >= 1 << 24 ? 'generated' : identity < 256 ? 'kube-apiserver' : 'custom-resource';
      return { prefix: key, identity, labels: ids.get(identity) ?? [], source };
    }).sort((a, b) => a.prefix.localeCompare(b.prefix, undefined, { numeric: true }));
  }

  /** The DNS proxy's onDnsResponse hook: an answer it forwarded teaches toFQDNs policy. */
  observeDnsResponse(e: DnsResponseEvent): void {
    this.policy.fqdn.observe(e);
  }

  fqdnCacheList(): FqdnCacheRow[] {
    return this.policy.fqdn.list();
  }

  fqdnCacheClean(endpointId?: number): number {
    return this.policy.fqdn.clean(endpointId);
  }

  subscribeMonitor(cb: (e: MonitorEvent) => void): () => void {
    return this.dp.events.subscribe(cb);
  }

  startTrace(req: TraceRequest, sink: TraceSink): () => void {
    const { filter, timeoutMs } = traceFilter(req, (ns, name) => this.getPod(ns, name));
    const describeEndpoint = (id: number) => {
      const p = this.endpointsMgr.list().find((x) => x.endpointID === id);
      return p ? `${p.namespace}/${p.name}` : undefined;
    };
    return startTraceSession(this.dp, filter, sink, { timeoutMs, format: { describeEndpoint, hostEp: this.dp.hostEp } });
  }

  /** The one writer of pods, services, policies and the other kinds: set in start(). */
  resources!: ResourceManager;

  /** The relay this agent runs, as its own client (observe, hubble status and the web page over every node). */
  get hubbleRelay() {
    return this.hubbleGrpc?.relayClient;
  }

  /** Hubble's flow ring (`ciliary observe`, /v1/flows): set in start() unless enable-hubble is false. */
  hubble?: Hubble;

  /** Subscribes Hubble to the monitor for the agent's life (events are only made while someone listens). */
  private startHubble(): void {
    if (this.cfg['enable-hubble'] === false) return;
    const resolver = new AgentResolver({
      pods: () => this.endpointsMgr.list(),
      endpoints: () => this.endpointsMgr.endpoints(),
      lookupIdentity: (ip) => this.dp.lookupIdentity(parseIPv4(ip)),
      identities: () => this.policy.allIdentities(),
      remotePods: () => this.multiNode?.remotePods() ?? [],
    });
    const lost0 = this.dp.events.lost;
    const hubble = new Hubble({ capacity: this.cfg['hubble-event-buffer-capacity'], nodeName: this.nodeName, resolver, monitorLost: () => this.dp.events.lost - lost0 });
    this.dp.events.subscribeRaw((e) => hubble.ingest(e));
    this.hubble = hubble;
  }
}
