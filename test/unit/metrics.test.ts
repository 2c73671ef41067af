// Agent metrics (cilium_*): datapath counters read at scrape time, policy verdicts, endpoint states,
// map pressure, service events; the exposition formats and the /metrics server's negotiation.
import { describe, it, expect, afterEach } from 'vitest';
import { request } from 'node:http';
import { Counter, Histogram, Registry } from 'prom-client';
import { AgentMetrics, type AgentMetricsSource, type DatapathCounter } from '../../src/observe/metrics/agent-metrics.ts';
import { render, wantsOpenMetrics } from '../../src/observe/metrics/exposition.ts';
import { MetricsServer, parseListenAddress } from '../../src/observe/metrics/server.ts';
import { Observability, type ObservabilitySource } from '../../src/observe/metrics/index.ts';
import type { RawEvent } from '../../src/dataplane/events.ts';
import { rawEvent } from '../helpers/raw-events.ts';

/** Sample lines of a text exposition: 'name{a="b"}' → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+?(?:\{.*\})?) (\S+)/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

class FakeSource implements AgentMetricsSource {
  counters: DatapathCounter[] = [];
  maps = [{ name: 'cilium_ct4_global', pressure: 0.25 }, { name: 'cilium_lxc', pressure: 0.001 }];
  endpoints = [{ state: 'ready' }, { state: 'ready' }, { state: 'waiting-for-identity' }];
  services: Array<{ namespace: string; name: string; ports?: number[] }> = [];
  version = '9.9.9';
  metricsSnapshot() { return this.counters; }
  listMaps() { return this.maps; }
  listEndpoints() { return this.endpoints; }
  listServices() { return this.services; }
}

const verdict = (direction: 'ingress' | 'egress', policyMatch: string, action: 'allow' | 'deny'): RawEvent =>
  rawEvent('policy-verdict', new Date().toISOString(), { direction, policyMatch, action });

describe('agent metrics', () => {
  it('reports datapath drops and forwards with Cilium reason texts and directions', async () => {
    const src = new FakeSource();
    const m = new AgentMetrics(src);
    src.counters = [
      { reason: 0, direction: 1, packets: 10, bytes: 1000 },
      { reason: 0, direction: 2, packets: 7, bytes: 700 },
      { reason: 132, direction: 2, packets: 5, bytes: 420 },
      { reason: 133, direction: 1, packets: 3, bytes: 180 },
    ];
    const s = samples(await render([m.registry], false));
    expect(s.get('cilium_drop_count_total{reason="Invalid source ip",direction="EGRESS"}')).toBe(5);
    expect(s.get('cilium_drop_bytes_total{reason="Invalid source ip",direction="EGRESS"}')).toBe(420);
    expect(s.get('cilium_drop_count_total{reason="Policy denied",direction="INGRESS"}')).toBe(3);
    expect(s.get('cilium_forward_count_total{direction="INGRESS"}')).toBe(10);
    expect(s.get('cilium_forward_count_total{direction="EGRESS"}')).toBe(7);
    expect(s.get('cilium_forward_bytes_total{direction="EGRESS"}')).toBe(700);
    // Values follow the map: a second scrape shows the new totals, not a sum of scrapes.
    src.counters = [{ reason: 132, direction: 2, packets: 6, bytes: 504 }];
    const s2 = samples(await render([m.registry], false));
    expect(s2.get('cilium_drop_count_total{reason="Invalid source ip",direction="EGRESS"}')).toBe(6);
    expect(s2.has('cilium_forward_count_total{direction="INGRESS"}')).toBe(false);
  });

  it('counts policy verdicts by direction, match and action', async () => {
    const m = new AgentMetrics(new FakeSource());
    m.onEvent(verdict('ingress', 'L3-L4', 'allow'));
    m.onEvent(verdict('ingress', 'L3-L4', 'allow'));
    m.onEvent(verdict('egress', 'none', 'deny'));
    m.onEvent(rawEvent('drop', new Date().toISOString(), { reason: 133 }));
    const s = samples(await render([m.registry], false));
    expect(s.get('cilium_policy_verdict_total{direction="INGRESS",match="L3-L4",action="allow"}')).toBe(2);
    expect(s.get('cilium_policy_verdict_total{direction="EGRESS",match="none",action="deny"}')).toBe(1);
    expect([...s.keys()].filter((k) => k.startsWith('cilium_policy_verdict_total')).length).toBe(2);
  });

  it('reports endpoint states, map pressure, version and unreachable nodes', async () => {
    const src = new FakeSource();
    const m = new AgentMetrics(src);
    let s = samples(await render([m.registry], false));
    expect(s.get('cilium_endpoint_state{endpoint_state="ready"}')).toBe(2);
    expect(s.get('cilium_endpoint_state{endpoint_state="waiting-for-identity"}')).toBe(1);
    expect(s.get('cilium_endpoint')).toBe(3);
    expect(s.get('cilium_bpf_map_pressure{map_name="cilium_ct4_global"}')).toBe(0.25);
    expect(s.get('cilium_unreachable_nodes')).toBe(0);
    expect([...s.keys()].find((k) => k.startsWith('cilium_version{'))).toMatch(/^cilium_version\{version="9\.9\.9",revision="",arch="\w+"\}$/);
    // A state that empties reports 0 rather than vanishing.
    src.endpoints = [{ state: 'ready' }];
    s = samples(await render([m.registry], false));
    expect(s.get('cilium_endpoint_state{endpoint_state="waiting-for-identity"}')).toBe(0);
    expect(s.get('cilium_endpoint_state{endpoint_state="ready"}')).toBe(1);
  });

  it('counts service add, update and delete events between scrapes', async () => {
    const src = new FakeSource();
    const m = new AgentMetrics(src);
    src.services = [{ namespace: 'default', name: 'a', ports: [80] }, { namespace: 'default', name: 'b', ports: [80] }];
    let s = samples(await render([m.registry], false));
    expect(s.get('cilium_services_events_total{action="add"}')).toBe(2);
    src.services = [{ namespace: 'default', name: 'a', ports: [8080] }, { namespace: 'kube-system', name: 'c' }];
    s = samples(await render([m.registry], false));
    expect(s.get('cilium_services_events_total{action="add"}')).toBe(3);
    expect(s.get('cilium_services_events_total{action="update"}')).toBe(1);
    expect(s.get('cilium_services_events_total{action="delete"}')).toBe(1);
  });
});

describe('exposition', () => {
  it('negotiates OpenMetrics from the Accept header, with q-values', () => {
    expect(wantsOpenMetrics(undefined)).toBe(false);
    expect(wantsOpenMetrics('text/plain')).toBe(false);
    expect(wantsOpenMetrics('application/openmetrics-text; version=1.0.0')).toBe(true);
    expect(wantsOpenMetrics('application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1')).toBe(true);
    expect(wantsOpenMetrics('text/plain;q=1,application/openmetrics-text;q=0.5')).toBe(false);
    expect(wantsOpenMetrics('application/openmetrics-text;q=0')).toBe(false);
  });

  it('renders counters, histograms and escaping in both formats, without renaming the metrics', async () => {
    const reg = new Registry();
    const c = new Counter({ name: 'x_events_total', help: 'Events\nhelp', labelNames: ['k'], registers: [reg] });
    const h = new Histogram({ name: 'x_seconds', help: 'Latency', labelNames: ['m'], buckets: [0.1, 1], registers: [reg] });
    c.inc({ k: 'a "quoted"\\ value' }, 2);
    h.observe({ m: 'GET' }, 0.5);
    const prom = await render([reg], false);
    expect(prom).toContain('# HELP x_events_total Events\\nhelp\n# TYPE x_events_total counter\nx_events_total{k="a \\"quoted\\"\\\\ value"} 2');
    expect(prom).toContain('x_seconds_bucket{le="0.1",m="GET"} 0');
    expect(prom).toContain('x_seconds_bucket{le="1",m="GET"} 1');
    expect(prom).toContain('x_seconds_bucket{le="+Inf",m="GET"} 1');
    expect(prom).toContain('x_seconds_sum{m="GET"} 0.5');
    expect(prom).not.toContain('# EOF');
    const om = await render([reg], true);
    expect(om).toContain('# TYPE x_events counter\nx_events_total{k="a \\"quoted\\"\\\\ value"} 2');
    expect(om.endsWith('# EOF\n')).toBe(true);
    // Prometheus text after an OpenMetrics scrape still names the counter x_events_total.
    expect(await render([reg], false)).toBe(prom);
  });

  it('parses listen addresses the way Cilium writes them', () => {
    expect(parseListenAddress('')).toBeUndefined();
    expect(parseListenAddress(':9962')).toEqual({ host: undefined, port: 9962 });
    expect(parseListenAddress('127.0.0.1:9965')).toEqual({ host: '127.0.0.1', port: 9965 });
    expect(parseListenAddress('[::1]:9962')).toEqual({ host: '::1', port: 9962 });
    expect(() => parseListenAddress('9962')).toThrow(/host\]:port/);
  });
});

describe('metrics server', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const get = (port: number, path: string, accept?: string) => new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: accept ? { accept } : {} }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });

  it('serves /metrics as Prometheus text or OpenMetrics by Accept, 404 elsewhere', async () => {
    const src = new FakeSource();
    src.counters = [{ reason: 132, direction: 2, packets: 5, bytes: 420 }];
    const m = new AgentMetrics(src);
    server = new MetricsServer(() => [m.registry]);
    const port = await server.listen({ host: '127.0.0.1', port: 0 });
    const text = await get(port, '/metrics');
    expect(text.status).toBe(200);
    expect(text.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(text.body).toContain('cilium_drop_count_total{reason="Invalid source ip",direction="EGRESS"} 5');
    const om = await get(port, '/metrics', 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5');
    expect(om.type).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(om.body).toContain('# TYPE cilium_drop_count counter');
    expect(om.body).toContain('cilium_drop_count_total{reason="Invalid source ip",direction="EGRESS"} 5');
    expect(om.body.endsWith('# EOF\n')).toBe(true);
    expect((await get(port, '/nope')).status).toBe(404);
  });

  it('Observability: servers on the configured addresses, verdicts from the monitor, a busy port only logged', async () => {
    const src = new FakeSource();
    let monitorCb: ((e: RawEvent) => void) | undefined;
    const logs: string[] = [];
    const log = { info: () => undefined, warn: (_o: object, msg: string) => logs.push(msg), error: (_o: object, msg: string) => logs.push(msg) };
    const source = (subscribeEvents: ObservabilitySource['subscribeEvents']): ObservabilitySource => ({
      metricsSnapshot: () => src.counters, listMaps: () => src.maps, listEndpoints: () => src.endpoints, listServices: () => src.services, version: src.version, subscribeEvents,
    });
    const o = await Observability.start({ 'node-name': 'n1', 'prometheus-serve-addr': '127.0.0.1:0', 'hubble-metrics-server': '127.0.0.1:0' },
      source((cb) => { monitorCb = cb; return () => (monitorCb = undefined); }), log);
    try {
      expect(o.ports.agent).toBeGreaterThan(0);
      expect(o.ports.hubble).toBeGreaterThan(0);
      expect(o.hubble?.enabled).toEqual(['dns', 'drop', 'tcp', 'flow', 'port-distribution', 'icmp', 'httpV2']);
      monitorCb!(verdict('egress', 'L3-Only', 'allow'));
      expect((await get(o.ports.agent, '/metrics')).body).toContain('cilium_policy_verdict_total{direction="EGRESS",match="L3-Only",action="allow"} 1');
      expect((await get(o.ports.hubble, '/metrics')).body).toContain('# TYPE hubble_flows_processed_total counter');
      const busy = await Observability.start({ 'node-name': 'n1', 'prometheus-serve-addr': `127.0.0.1:${o.ports.agent}`, 'enable-hubble': false },
        source(() => () => undefined), log);
      expect(busy.ports.agent).toBe(0);
      expect(logs).toContain('cannot serve agent metrics');
      await busy.close();
    } finally {
      await o.close();
    }
    expect(monitorCb).toBeUndefined();
  });
});

describe('grafana dashboard', () => {
  it('is valid JSON with a datasource variable, and queries only metrics ciliary serves', async () => {
    const { readFileSync } = await import('node:fs');
    const { HubbleMetrics } = await import('../../src/observe/metrics/hubble/index.ts');
    const { FlowExporter } = await import('../../src/observe/export/exporter.ts');
    const { openMetricsRegistry } = await import('../../src/observe/metrics/exposition.ts');
    const dash = JSON.parse(readFileSync(new URL('../../examples/grafana/ciliary-dashboard.json', import.meta.url), 'utf8'));
    expect(dash.templating.list.find((v: any) => v.type === 'datasource')?.query).toBe('prometheus');
    const exprs: string[] = dash.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => t.expr));
    expect(exprs.length).toBeGreaterThan(15);
    const used = new Set(exprs.flatMap((e) => e.match(/\b(?:cilium|hubble)_[a-z_]+/g) ?? []));
    const served = new Set<string>();
    const add = (names: string[]) => names.forEach((n) => served.add(n));
    add(new AgentMetrics(new FakeSource()).registry.getMetricsAsArray().map((m) => m.name));
    for (const list of ['dns,drop,tcp,flow,port-distribution,icmp,http', 'httpV2']) {
      const h = new HubbleMetrics(list);
      add(h.registry.getMetricsAsArray().flatMap((m) => [m.name, `${m.name}_bucket`]));
    }
    const reg = openMetricsRegistry();
    new FlowExporter({ path: '/nonexistent/x.log', nodeName: 'n', registry: reg });
    add(reg.getMetricsAsArray().map((m) => m.name));
    expect([...used].filter((n) => !served.has(n))).toEqual([]);
    expect(used.has('cilium_drop_count_total') && used.has('hubble_http_request_duration_seconds_bucket')).toBe(true);
  });
});
