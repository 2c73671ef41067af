// Metrics and flow export on a real agent: a known number of drops and connections, then the agent
// metrics (:9962), the Hubble metrics (:9965) and the exported flow log must show exactly those.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { poll, requireRoot, run, sh, waitListening } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
const SERVER = ['node', '-e', "require('http').createServer((q,s)=>s.end('ok')).listen(8080,'0.0.0.0')"];
const SPOOFED = '172.20.99.99';

function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([^#\s]\S*?(?:\{.*\})?) (\S+)/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

describe.skipIf(!root)('metrics and flow export on a real agent', () => {
  let agent: TestAgent;
  let dir: string;
  let exportPath: string;
  let server: any;

  const scrape = async (port: number, accept?: string) => {
    const args = ['netns', 'exec', agent.nodeNetns, 'curl', '-s', '--max-time', '5', ...(accept ? ['-H', `Accept: ${accept}`] : []), `http://localhost:${port}/metrics`];
    const r = await run('ip', args, 10_000);
    expect(r.code).toBe(0);
    return r.stdout;
  };
  const inPod = (pod: string, args: string[], signal?: AbortSignal) => run('ip', ['netns', 'exec', agent.podNetns(pod), ...args], 30_000, signal);
  const val = (s: Map<string, number>, key: string) => s.get(key) ?? 0;
  /** A ping from the client that the datapath drops: resolves with the drop event (the ping is stopped then). */
  const droppedPing = (reason: number, args: string[]) => agent.expectEvent('?type=drop', `a drop ${reason} of the ping`, (e) => e.reason === reason,
    (signal) => inPod('client', ['ping', '-c', '1', '-W', '2', ...args, server.podIP], signal), { stopAction: true });
  // The agent samples before and after the known traffic of beforeAll.
  let beforeSpoofed: Map<string, number>;
  let afterSpoofed: Map<string, number>;
  let beforePolicy: Map<string, number>;
  let afterPolicy: Map<string, number>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-flowlog-'));
    exportPath = join(dir, 'hubble', 'events.log');
    agent = new TestAgent([`--hubble-export-file-path=${exportPath}`, '--hubble-export-allowlist={"verdict":["DROPPED"]}',
      '--hubble-metrics=dns drop tcp flow port-distribution icmp httpV2:labelsContext=source_namespace,destination_namespace']);
    await agent.start();
    await agent.createPod('client', { app: 'client' });
    server = await agent.createPod('server', { app: 'server' }, SERVER);
    await waitListening(agent.podNetns('server'), 8080);
    // Known traffic, which every test below counts: 5 spoofed-source pings, then under a port-8080
    // policy 3 allowed connections and 2 denied pings.
    beforeSpoofed = samples(await scrape(9962));
    sh('ip', ['-n', agent.podNetns('client'), 'addr', 'add', `${SPOOFED}/32`, 'dev', 'eth0']);
    for (let i = 0; i < 5; i++) await droppedPing(132, ['-I', SPOOFED]);
    sh('ip', ['-n', agent.podNetns('client'), 'addr', 'del', `${SPOOFED}/32`, 'dev', 'eth0']);
    afterSpoofed = samples(await scrape(9962));
    const cnp = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'server-8080', namespace: 'default' },
      spec: { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] } };
    const p = await agent.api('PUT', '/v1/policy', [cnp]);
    expect(p.status).toBeLessThan(300);
    beforePolicy = samples(await scrape(9962));
    for (let i = 0; i < 3; i++) expect((await inPod('client', ['curl', '-s', '--max-time', '5', `http://${server.podIP}:8080/`])).stdout).toBe('ok');
    for (let i = 0; i < 2; i++) await droppedPing(133, []);
    afterPolicy = samples(await scrape(9962));
    await agent.api('DELETE', '/v1/policy?all=true');
  });
  afterAll(async () => {
    await agent?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('counts 5 spoofed-source pings as cilium_drop_count_total{reason="Invalid source ip",direction="EGRESS"} 5', () => {
    const key = 'cilium_drop_count_total{reason="Invalid source ip",direction="EGRESS"}';
    expect(val(beforeSpoofed, key)).toBe(0);
    expect(val(afterSpoofed, key)).toBe(5);
    const bytes = val(afterSpoofed, 'cilium_drop_bytes_total{reason="Invalid source ip",direction="EGRESS"}');
    expect(bytes % 5).toBe(0); // five identical packets
    expect(bytes / 5).toBeGreaterThanOrEqual(84); // at least 20 IP + 8 ICMP + 56 data
  });

  it('reports forwards, endpoint states, map pressure, version and OpenMetrics', async () => {
    const before = samples(await scrape(9962));
    const r = await inPod('client', ['curl', '-s', '--max-time', '5', `http://${server.podIP}:8080/`]);
    expect(r.stdout).toBe('ok');
    const text = await scrape(9962);
    const after = samples(text);
    const forwards = (s: Map<string, number>, what: string) => val(s, `cilium_forward_${what}_total{direction="INGRESS"}`) + val(s, `cilium_forward_${what}_total{direction="EGRESS"}`);
    expect(forwards(after, 'count')).toBeGreaterThanOrEqual(forwards(before, 'count') + 6); // the handshake, request, response and close
    expect(forwards(after, 'bytes')).toBeGreaterThan(forwards(before, 'bytes'));
    const eps = (await agent.api('GET', '/v1/endpoint')).body as Array<{ state: string }>;
    expect(val(after, 'cilium_endpoint_state{endpoint_state="ready"}')).toBe(eps.filter((e) => e.state === 'ready').length);
    expect(val(after, 'cilium_endpoint')).toBe(eps.length);
    expect([...after.keys()].some((k) => /^cilium_bpf_map_pressure\{map_name="cilium_lxc"\}$/.test(k))).toBe(true);
    expect(text).toMatch(/^cilium_version\{version="\d+\.\d+\.\d+",revision="",arch="\w+"\} 1$/m);
    expect(after.get('cilium_unreachable_nodes')).toBe(0);
    const services = (await agent.api('GET', '/v1/services')).body as unknown[];
    expect(val(after, 'cilium_services_events_total{action="add"}')).toBe(services.length);
    const om = await scrape(9962, 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5');
    expect(om).toContain('# TYPE cilium_drop_count counter');
    expect(om).toContain('cilium_drop_count_total{reason="Invalid source ip",direction="EGRESS"} 5');
    expect(om.endsWith('# EOF\n')).toBe(true);
  });

  it('counts policy verdicts by direction, match and action', () => {
    const delta = (k: string) => val(afterPolicy, k) - val(beforePolicy, k);
    expect(delta('cilium_policy_verdict_total{direction="INGRESS",match="L3-L4",action="allow"}')).toBe(3);
    expect(delta('cilium_policy_verdict_total{direction="INGRESS",match="none",action="deny"}')).toBe(2);
    expect(delta('cilium_drop_count_total{reason="Policy denied",direction="INGRESS"}')).toBe(2);
  });

  it('serves Hubble metrics on :9965 from the flows', async () => {
    // Flows reach Hubble a moment after the packets: scrape until the drops of beforeAll are all in.
    let text = '';
    const dropsIn = (m: Map<string, number>) => m.get('hubble_drop_total{reason="INVALID_SOURCE_IP",protocol="ICMPv4"}') === 5 && m.get('hubble_drop_total{reason="POLICY_DENIED",protocol="ICMPv4"}') === 4;
    await poll('the Hubble drop metrics', async () => dropsIn(samples((text = await scrape(9965)))), 10_000, 200).catch(() => undefined);
    const s = samples(text);
    expect(s.get('hubble_drop_total{reason="INVALID_SOURCE_IP",protocol="ICMPv4"}')).toBe(5);
    // Each denied ping is two flows, as in Hubble: the policy verdict and the drop.
    expect(s.get('hubble_drop_total{reason="POLICY_DENIED",protocol="ICMPv4"}')).toBe(4);
    expect(val(s, 'hubble_flows_processed_total{protocol="ICMPv4",type="Drop",subtype="",verdict="DROPPED"}')).toBe(7);
    expect(val(s, 'hubble_flows_processed_total{protocol="ICMPv4",type="PolicyVerdict",subtype="",verdict="DROPPED"}')).toBe(2);
    expect(val(s, 'hubble_flows_processed_total{protocol="TCP",type="PolicyVerdict",subtype="",verdict="FORWARDED"}')).toBeGreaterThanOrEqual(3); // both ends' verdicts
    expect(val(s, 'hubble_port_distribution_total{protocol="TCP",port="8080"}')).toBeGreaterThan(0);
    expect(val(s, 'hubble_tcp_flags_total{flag="SYN",family="IPv4"}')).toBeGreaterThan(0);
    expect(text).toContain('# TYPE hubble_http_requests_total counter');
  });

  it('exports the dropped flows (allowlist verdict DROPPED) as hubble JSON lines', async () => {
    const read = () => (existsSync(exportPath) ? readFileSync(exportPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    // 5 spoofed pings (a drop each) and 2 denied pings (a drop and a policy verdict each).
    await poll('the exported flows', () => read().length >= 9, 10_000, 200).catch(() => undefined);
    const lines = read();
    expect(lines.every((l) => l.flow.verdict === 'DROPPED' && l.node_name === agent.node && typeof l.time === 'string')).toBe(true);
    const spoofed = lines.filter((l) => l.flow.drop_reason_desc === 'INVALID_SOURCE_IP');
    expect(spoofed).toHaveLength(5);
    expect(spoofed[0].flow.IP).toEqual({ source: SPOOFED, destination: server.podIP, ipVersion: 'IPv4' });
    const denied = lines.filter((l) => l.flow.drop_reason_desc === 'POLICY_DENIED');
    expect(denied.filter((l) => l.flow.event_type.type === 1)).toHaveLength(2);
    expect(denied.filter((l) => l.flow.event_type.type === 5)).toHaveLength(2);
    expect(samples(await scrape(9965)).get('hubble_export_flows_total')).toBe(lines.length);
  });
});
