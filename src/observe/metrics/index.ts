// Metrics and flow export for the agent: the agent metrics server (prometheus-serve-addr), the
// Hubble metrics server (hubble-metrics-server) and the flow exporter (hubble-export-file-path).
// The agent starts one Observability in start(), feeds it flows (onFlow) and closes it in stop().
import type { Flow } from '../flow.ts';
import type { RawEvent } from '../../dataplane/events.ts';
import type { AgentConfig } from '../../control/config.ts';
import { AgentMetrics, type AgentMetricsSource } from './agent-metrics.ts';
import { HubbleMetrics } from './hubble/index.ts';
import { MetricsServer, parseListenAddress } from './server.ts';
import { openMetricsRegistry, type AnyRegistry } from './exposition.ts';
import { FlowExporter, type LogLike } from '../export/exporter.ts';

export { AgentMetrics } from './agent-metrics.ts';
export { HubbleMetrics } from './hubble/index.ts';
export { MetricsServer, parseListenAddress } from './server.ts';

export const DEFAULT_HUBBLE_METRICS = 'dns,drop,tcp,flow,port-distribution,icmp,httpV2';

export interface ObservabilitySource extends AgentMetricsSource {
  /** Decoded monitor records (policy verdicts are counted). */
  subscribeEvents(cb: (e: RawEvent) => void): () => void;
}

/** The configuration keys read here (missing keys take their defaults). */
export type ObservabilityConfig = Partial<AgentConfig> & Pick<AgentConfig, 'node-name'>;

export interface ObservabilityLog extends LogLike {
  info(obj: object, msg: string): void;
}

export class Observability {
  agent?: AgentMetrics;
  hubble?: HubbleMetrics;
  exporter?: FlowExporter;
  readonly hubbleRegistry = openMetricsRegistry();
  /** Bound ports (0 = not serving). */
  readonly ports = { agent: 0, hubble: 0 };
  private readonly servers: MetricsServer[] = [];
  private unsubscribe?: () => void;

  private constructor(private readonly log: ObservabilityLog) {}

  /** Throws for invalid metric/filter/field-mask settings; a port that cannot be bound is only logged. */
  static async start(cfg: ObservabilityConfig, src: ObservabilitySource, log: ObservabilityLog): Promise<Observability> {
    const o = new Observability(log);
    const c = cfg as Record<string, unknown>;
    const str = (k: string, d = '') => (typeof c[k] === 'string' ? (c[k] as string) : d);
    const num = (k: string, d: number) => (typeof c[k] === 'number' ? (c[k] as number) : d);
    const hubbleOn = cfg['enable-hubble'] !== false;

    const agentAddr = parseListenAddress(str('prometheus-serve-addr', ':9962'));
    const hubbleAddr = hubbleOn ? parseListenAddress(str('hubble-metrics-server', ':9965')) : undefined;
    const list = str('hubble-metrics', DEFAULT_HUBBLE_METRICS);
    if (hubbleAddr && list.trim()) o.hubble = new HubbleMetrics(list, o.hubbleRegistry);
    const exportPath = hubbleOn ? str('hubble-export-file-path') : '';
    if (exportPath) {
      o.exporter = new FlowExporter({
        path: exportPath,
        nodeName: cfg['node-name'],
        maxSizeMB: num('hubble-export-file-max-size-mb', 10),
        maxBackups: num('hubble-export-file-max-backups', 5),
        allowlist: str('hubble-export-allowlist'),
        denylist: str('hubble-export-denylist'),
        fieldMask: str('hubble-export-fieldmask'),
        redact: { enabled: cfg['hubble-redact-enabled'] === true, httpUrlQuery: cfg['hubble-redact-http-urlquery'] === true },
        registry: o.hubbleRegistry,
        log,
      });
    }
    if (agentAddr) {
      const agent = new AgentMetrics(src);
      o.agent = agent;
      o.unsubscribe = src.subscribeEvents((e) => agent.onEvent(e));
      o.ports.agent = await o.serve('agent', agentAddr, () => [agent.registry]);
    }
    if (hubbleAddr && (o.hubble || o.exporter)) {
      o.ports.hubble = await o.serve('hubble', hubbleAddr, () => [o.hubbleRegistry]);
    }
    return o;
  }

  /** True when flows have somewhere to go (hubble metrics or the exporter). */
  get wantsFlows(): boolean {
    return !!(this.hubble || this.exporter);
  }

  /** One flow from Hubble: metrics handlers and the exporter; never throws. */
  readonly onFlow = (f: Flow): void => {
    this.hubble?.processFlow(f);
    this.exporter?.onFlow(f);
  };

  private async serve(what: string, addr: { host?: string; port: number }, registries: () => AnyRegistry[]): Promise<number> {
    const server = new MetricsServer(registries);
    try {
      const port = await server.listen(addr);
      this.servers.push(server);
      this.log.info({ address: `${addr.host ?? ''}:${port}` }, `serving ${what} metrics`);
      return port;
    } catch (e) {
      this.log.error({ address: `${addr.host ?? ''}:${addr.port}`, err: (e as Error).message }, `cannot serve ${what} metrics`);
      return 0;
    }
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await Promise.all(this.servers.splice(0).map((s) => s.close()));
    await this.exporter?.close();
  }
}
