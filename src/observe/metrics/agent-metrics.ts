// The agent's Prometheus metrics (prometheus-serve-addr, Cilium's cilium_* names). Datapath
// counters are read from cilium_metrics when scraped; nothing here runs per packet.
import { Counter, Gauge, Registry } from 'prom-client';
import { dropReasonText } from '../../dataplane/drop-reasons.ts';
import type { RawEvent } from '../../dataplane/events.ts';
import { MSG_POLICY_VERDICT } from '../../dataplane/vocab/message-types.ts';
import { policyMatchName } from '../../dataplane/vocab/policy-match.ts';

export interface DatapathCounter {
  reason: number;
  direction: number;
  packets: number;
  bytes: number;
}

/** What the agent metrics read at scrape time; the Agent provides it. */
export interface AgentMetricsSource {
  metricsSnapshot(): DatapathCounter[];
  listMaps(): Array<{ name: string; pressure: number }>;
  listEndpoints(): Array<{ state: string }>;
  listServices(): Array<{ namespace: string; name: string }>;
  /** Nodes of the cluster whose agents stopped answering. */
  unreachableNodes?(): number;
  version: string;
}

/** cilium_metrics direction → Cilium's label value. */
export function directionLabel(dir: number): string {
  return dir === 1 ? 'INGRESS' : dir === 2 ? 'EGRESS' : dir === 3 ? 'SERVICE' : 'UNKNOWN';
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' };

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly verdicts: Counter<'direction' | 'match' | 'action'>;
  private readonly serviceEvents: Counter<'action'>;
  private services?: Map<string, string>;

  constructor(private readonly src: AgentMetricsSource) {
    const registers = [this.registry];
    const syncServices = () => this.syncServices();
    const snapshot = () => src.metricsSnapshot();

    new Counter({
      name: 'cilium_drop_count_total', help: 'Total dropped packets, tagged by drop reason and ingress/egress direction',
      labelNames: ['reason', 'direction'], registers,
      collect() {
        this.reset();
        for (const c of snapshot()) if (c.reason !== 0) this.inc({ reason: dropReasonText(c.reason), direction: directionLabel(c.direction) }, c.packets);
      },
    });
    new Counter({
      name: 'cilium_drop_bytes_total', help: 'Total dropped bytes, tagged by drop reason and ingress/egress direction',
      labelNames: ['reason', 'direction'], registers,
      collect() {
        this.reset();
        for (const c of snapshot()) if (c.reason !== 0) this.inc({ reason: dropReasonText(c.reason), direction: directionLabel(c.direction) }, c.bytes);
      },
    });
    new Counter({
      name: 'cilium_forward_count_total', help: 'Total forwarded packets, tagged by ingress/egress direction',
      labelNames: ['direction'], registers,
      collect() {
        this.reset();
        for (const c of snapshot()) if (c.reason === 0) this.inc({ direction: directionLabel(c.direction) }, c.packets);
      },
    });
    new Counter({
      name: 'cilium_forward_bytes_total', help: 'Total forwarded bytes, tagged by ingress/egress direction',
      labelNames: ['direction'], registers,
      collect() {
        this.reset();
        for (const c of snapshot()) if (c.reason === 0) this.inc({ direction: directionLabel(c.direction) }, c.bytes);
      },
    });
    this.verdicts = new Counter({
      name: 'cilium_policy_verdict_total', help: 'Cilium policy verdict counter',
      labelNames: ['direction', 'match', 'action'], registers,
    });
    const seenStates = new Set<string>();
    new Gauge({
      name: 'cilium_endpoint_state', help: 'Count of all endpoints, tagged by different endpoint states',
      labelNames: ['endpoint_state'], registers,
      collect() {
        const counts = new Map<string, number>();
        for (const e of src.listEndpoints()) counts.set(e.state, (counts.get(e.state) ?? 0) + 1);
        for (const s of counts.keys()) seenStates.add(s);
        for (const s of seenStates) this.set({ endpoint_state: s }, counts.get(s) ?? 0);
      },
    });
    new Gauge({
      name: 'cilium_endpoint', help: 'Number of endpoints managed by this agent', registers,
      collect() { this.set(src.listEndpoints().length); },
    });
    new Gauge({
      name: 'cilium_bpf_map_pressure', help: 'Fill percentage of map, tagged by map name',
      labelNames: ['map_name'], registers,
      collect() {
        this.reset();
        for (const m of src.listMaps()) this.set({ map_name: m.name }, m.pressure);
      },
    });
    this.serviceEvents = new Counter({
      name: 'cilium_services_events_total', help: 'Number of services events labeled by action type',
      labelNames: ['action'], registers,
      collect() { syncServices(); },
    });
    new Gauge({ name: 'cilium_unreachable_nodes', help: 'Number of nodes that cannot be reached', registers, collect() { this.set(src.unreachableNodes?.() ?? 0); } });
    const version = new Gauge({
      name: 'cilium_version', help: 'Cilium version', labelNames: ['version', 'revision', 'arch'], registers,
    });
    version.set({ version: src.version, revision: '', arch: GO_ARCH[process.arch] ?? process.arch }, 1);
  }

  /** A monitor record: policy verdicts are counted, everything else is ignored. */
  onEvent(e: RawEvent): void {
    if (e.type !== MSG_POLICY_VERDICT) return;
    this.verdicts.inc({ direction: e.sub ? 'EGRESS' : 'INGRESS', match: policyMatchName(e.match), action: e.reason === 0 ? 'allow' : 'deny' });
  }

  /** Counts service adds/updates/deletes since the last call (called at every scrape). */
  syncServices(): void {
    const now = new Map<string, string>();
    for (const s of this.src.listServices()) now.set(`${s.namespace}/${s.name}`, JSON.stringify(s));
    const before = this.services ?? new Map<string, string>();
    for (const [k, v] of now) {
      const old = before.get(k);
      if (old === undefined) this.serviceEvents.inc({ action: 'add' });
      else if (old !== v) this.serviceEvents.inc({ action: 'update' });
    }
    for (const k of before.keys()) if (!now.has(k)) this.serviceEvents.inc({ action: 'delete' });
    this.services = now;
  }
}
