// Hubble flows from hand-made monitor events, printed as REFERENCE.md's `hubble observe` lines.
process.env.TZ = 'UTC';
import { describe, it, expect } from 'vitest';
import type { EventPacket } from '../../src/control/types.ts';
import type { RawEvent } from '../../src/dataplane/events.ts';
import { MSG_AGENT } from '../../src/dataplane/vocab/message-types.ts';
import { rawEvent as ev } from '../helpers/raw-events.ts';
import type { Flow, FlowEndpoint } from '../../src/observe/flow.ts';
import { buildFlow, packetSummary, workloadsOf, type EndpointResolver } from '../../src/observe/hubble/builder.ts';
import { compactLine, FlowPrinter, grouping, jsonpbLine, statusText, stampMilli } from '../../src/observe/hubble/printer.ts';
import { Hubble } from '../../src/observe/hubble/observer.ts';
import { AgentResolver } from '../../src/observe/hubble/resolver.ts';
import { isHubbleCommand } from '../../src/cli/observe.ts';

const XWING = '10.0.1.160';
const DEATHSTAR = '10.0.1.167';
const TIEFIGHTER = '10.0.2.9';
const VIP = '10.96.41.44';
const nsLabels = ['k8s:io.cilium.k8s.policy.cluster=default', 'k8s:io.kubernetes.pod.namespace=default'];
const pods: Record<string, FlowEndpoint> = {
  [XWING]: { ID: 2885, identity: 7207, namespace: 'default', labels: ['k8s:class=xwing', ...nsLabels, 'k8s:org=alliance'], pod_name: 'xwing' },
  [DEATHSTAR]: { ID: 3615, identity: 15933, namespace: 'default', labels: ['k8s:class=deathstar', ...nsLabels, 'k8s:org=empire'], pod_name: 'deathstar-8c4c77fb7-nnzkt', workloads: [{ name: 'deathstar', kind: 'Deployment' }] },
  [TIEFIGHTER]: { ID: 2090, identity: 9225, namespace: 'default', labels: ['k8s:class=tiefighter', ...nsLabels, 'k8s:org=empire'], pod_name: 'tiefighter' },
};
const resolver: EndpointResolver = {
  resolve: (ip, hint) => pods[ip] ? structuredClone(pods[ip]) : ip === '10.0.2.15' ? { ID: 703, identity: 1, labels: ['reserved:host'] } : { identity: hint || 2, labels: ['reserved:world'] },
};

const tcp = (src: string, sport: number, dst: string, dport: number, flags: number): EventPacket => ({ src, dst, proto: 'TCP', sport, dport, tcpFlags: flags, length: 60 });
const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;
const FIN = 0x01;

const flow = (e: RawEvent) => buildFlow(e, resolver, 'k8s-w1')!;

describe('compact lines (REFERENCE.md)', () => {
  it('service translation: pre-xlate-fwd TRACED, post-xlate-fwd TRANSLATED, then the packet path', () => {
    const t = '2025-07-25T17:44:03.815Z';
    expect(compactLine(flow(ev('trace-sock', t, { xlatePoint: 'pre-xlate-fwd', packet: tcp(XWING, 43318, VIP, 80, SYN) }))))
      .toBe('Jul 25 17:44:03.815: default/xwing (ID:7207) <> 10.96.41.44:80 (world) pre-xlate-fwd TRACED (TCP)');
    expect(compactLine(flow(ev('trace-sock', t, { xlatePoint: 'post-xlate-fwd', packet: tcp(XWING, 43318, DEATHSTAR, 80, SYN) }))))
      .toBe('Jul 25 17:44:03.815: default/xwing (ID:7207) <> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) post-xlate-fwd TRANSLATED (TCP)');
    expect(compactLine(flow(ev('trace', t, { observationPoint: 'to-network', ctState: 'new', direction: 'egress', source: 2885, packet: tcp(XWING, 43318, DEATHSTAR, 80, SYN) }))))
      .toBe('Jul 25 17:44:03.815: default/xwing:43318 (ID:7207) -> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) to-network FORWARDED (TCP Flags: SYN)');
    expect(compactLine(flow(ev('trace', '2025-07-25T17:44:03.816Z', { observationPoint: 'to-endpoint', ctState: 'new', direction: 'ingress', packet: tcp(XWING, 43318, DEATHSTAR, 80, SYN) }))))
      .toBe('Jul 25 17:44:03.816: default/xwing:43318 (ID:7207) -> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) to-endpoint FORWARDED (TCP Flags: SYN)');
    expect(compactLine(flow(ev('trace', '2025-07-25T17:44:03.817Z', { observationPoint: 'to-endpoint', ctState: 'established', packet: tcp(XWING, 43318, DEATHSTAR, 80, ACK | PSH) }))))
      .toBe('Jul 25 17:44:03.817: default/xwing:43318 (ID:7207) -> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) to-endpoint FORWARDED (TCP Flags: ACK, PSH)');
    expect(compactLine(flow(ev('trace', '2025-07-25T17:44:03.822Z', { observationPoint: 'to-endpoint', ctState: 'established', packet: tcp(XWING, 43318, DEATHSTAR, 80, ACK | FIN) }))))
      .toBe('Jul 25 17:44:03.822: default/xwing:43318 (ID:7207) -> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) to-endpoint FORWARDED (TCP Flags: ACK, FIN)');
  });

  it('a reply prints with <- and the client still on the left', () => {
    const f = flow(ev('trace', '2025-07-25T17:47:52.956Z', { observationPoint: 'to-endpoint', ctState: 'reply', direction: 'ingress', packet: tcp(DEATHSTAR, 80, XWING, 60920, SYN | ACK) }));
    expect(compactLine(f)).toBe('Jul 25 17:47:52.956: default/xwing:60920 (ID:7207) <- default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) to-endpoint FORWARDED (TCP Flags: SYN, ACK)');
    expect(f.is_reply).toBe(true);
    expect(f.traffic_direction).toBe('EGRESS'); // xwing's connection, seen arriving at xwing
  });

  it('pre-xlate-rev: the backend with its port, the pod without', () => {
    expect(compactLine(flow(ev('trace-sock', '2025-07-25T17:47:52.956Z', { xlatePoint: 'pre-xlate-rev', packet: tcp(DEATHSTAR, 80, XWING, 60920, SYN | ACK) }))))
      .toBe('Jul 25 17:47:52.956: default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) <> default/xwing (ID:7207) pre-xlate-rev TRACED (TCP)');
  });

  it('a policy drop: <>, the drop reason as type', () => {
    const f = flow(ev('drop', '2025-12-02T05:36:24.490Z', { reason: 133, direction: 'ingress', source: 2885, packet: tcp(XWING, 55464, DEATHSTAR, 80, SYN) }));
    expect(compactLine(f).replace('nnzkt', 't7msh').replace('8c4c77fb7', 'c74d84667'))
      .toBe('Dec  2 05:36:24.490: default/xwing:55464 (ID:7207) <> default/deathstar-c74d84667-t7msh:80 (ID:15933) Policy denied DROPPED (TCP Flags: SYN)');
    expect(f).toMatchObject({ verdict: 'DROPPED', drop_reason: 133, drop_reason_desc: 'POLICY_DENIED', event_type: { type: 1, sub_type: 133 }, traffic_direction: 'INGRESS', Type: 'L3_L4' });
    expect(f.is_reply).toBeUndefined();
  });

  it('HTTP request and response through the proxy', () => {
    const url = 'http://deathstar.default.svc.cluster.local/v1/request-landing';
    const base = { verdict: 'Forwarded', method: 'POST', url, protocol: 'HTTP/1.1', client: { ip: TIEFIGHTER, port: 52296 }, server: { ip: DEATHSTAR, port: 80 }, endpoint: 3615, proxyPort: 12000 };
    const req = flow(ev('l7', '2025-07-25T18:23:15.877Z', { l7: { ...base, type: 'request' } }));
    const res = flow(ev('l7', '2025-07-25T18:23:15.878Z', { l7: { ...base, type: 'response', status: 200, latencyMs: 1.4 } }));
    expect(compactLine(req)).toBe(`Jul 25 18:23:15.877: default/tiefighter:52296 (ID:9225) -> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) http-request FORWARDED (HTTP/1.1 POST ${url})`);
    expect(compactLine(res)).toBe(`Jul 25 18:23:15.878: default/tiefighter:52296 (ID:9225) <- default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) http-response FORWARDED (HTTP/1.1 200 1ms (POST ${url}))`);
    expect(res.l7).toEqual({ type: 'RESPONSE', latency_ns: '1400000', http: { code: 200, method: 'POST', url, protocol: 'HTTP/1.1' } });
    expect(req).toMatchObject({ Type: 'L7', event_type: { type: 129 }, traffic_direction: 'INGRESS', is_reply: false });
    const denied = flow(ev('l7', '2025-07-25T18:23:15.877Z', { l7: { ...base, verdict: 'Denied', method: 'PUT', url: 'http://deathstar/v1/exhaust-port', type: 'request' } }));
    expect(compactLine(denied)).toMatch(/ http-request DROPPED \(HTTP\/1\.1 PUT http:\/\/deathstar\/v1\/exhaust-port\)$/);
  });

  it('non-pod peers print as IP:port (reserved-name)', () => {
    const f = flow(ev('trace', '2025-07-25T17:13:17.649Z', { observationPoint: 'to-endpoint', ctState: 'new', packet: tcp('10.0.2.15', 55892, DEATHSTAR, 8080, SYN) }));
    expect(compactLine(f)).toBe('Jul 25 17:13:17.649: 10.0.2.15:55892 (host) -> default/deathstar-8c4c77fb7-nnzkt:8080 (ID:15933) to-endpoint FORWARDED (TCP Flags: SYN)');
  });

  it('policy verdicts print ALLOWED/DENIED with policy-verdict:MATCH DIRECTION', () => {
    const f = flow(ev('policy-verdict', '2025-07-25T17:44:03.816Z', { direction: 'ingress', action: 'allow', policyMatch: 'L3-L4', srcIdentity: 9225, packet: tcp(TIEFIGHTER, 41000, DEATHSTAR, 80, SYN) }));
    expect(compactLine(f)).toBe('Jul 25 17:44:03.816: default/tiefighter:41000 (ID:9225) -> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN)');
    expect(f).toMatchObject({ event_type: { type: 5 }, policy_match_type: 2, verdict: 'FORWARDED', is_reply: false });
    const d = flow(ev('policy-verdict', '2025-07-25T17:44:03.816Z', { direction: 'ingress', action: 'deny', reason: 133, policyMatch: 'none', packet: tcp(XWING, 41000, DEATHSTAR, 80, SYN) }));
    expect(compactLine(d)).toMatch(/ <> default\/deathstar-8c4c77fb7-nnzkt:80 \(ID:15933\) policy-verdict:none INGRESS DENIED \(TCP Flags: SYN\)$/);
  });

  it('summaries: UDP, ICMPv4 type names', () => {
    expect(packetSummary({ src: XWING, dst: DEATHSTAR, proto: 'UDP', sport: 5000, dport: 53, length: 40 })).toBe('UDP');
    expect(packetSummary({ src: XWING, dst: DEATHSTAR, proto: 'ICMPv4', icmpType: 8, icmpCode: 0, length: 84 })).toBe('ICMPv4 EchoRequest');
    expect(packetSummary({ src: XWING, dst: DEATHSTAR, proto: 'ICMPv4', icmpType: 3, icmpCode: 3, length: 84 })).toBe('ICMPv4 DestinationUnreachable(Port)');
    const f = flow(ev('trace', '2025-07-25T17:44:03.782Z', { observationPoint: 'to-endpoint', ctState: 'new', packet: { src: XWING, dst: DEATHSTAR, proto: 'UDP', sport: 56514, dport: 53, length: 60 } }));
    expect(compactLine(f)).toBe('Jul 25 17:44:03.782: default/xwing:56514 (ID:7207) -> default/deathstar-8c4c77fb7-nnzkt:53 (ID:15933) to-endpoint FORWARDED (UDP)');
  });
});

describe('flow JSON', () => {
  it('has hubble\'s field names and order; jsonpb wraps it with node_name and time', () => {
    const f = flow(ev('trace', '2025-07-25T17:44:03.816Z', { observationPoint: 'to-endpoint', ctState: 'new', direction: 'ingress', packet: tcp(XWING, 43318, DEATHSTAR, 80, SYN) }));
    expect(Object.keys(f)).toEqual(['time', 'uuid', 'verdict', 'IP', 'l4', 'source', 'destination', 'Type', 'node_name', 'event_type', 'traffic_direction', 'trace_observation_point', 'is_reply', 'Summary']);
    expect(f).toMatchObject({
      time: '2025-07-25T17:44:03.816Z', verdict: 'FORWARDED', IP: { source: XWING, destination: DEATHSTAR, ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 43318, destination_port: 80, flags: { SYN: true } } }, Type: 'L3_L4', node_name: 'k8s-w1',
      event_type: { type: 4 }, traffic_direction: 'INGRESS', trace_observation_point: 'TO_ENDPOINT', is_reply: false, Summary: 'TCP Flags: SYN',
      destination: { ID: 3615, identity: 15933, namespace: 'default', pod_name: 'deathstar-8c4c77fb7-nnzkt', workloads: [{ name: 'deathstar', kind: 'Deployment' }] },
    });
    expect(f.uuid).toMatch(/^[0-9a-f-]{36}$/);
    const line = JSON.parse(jsonpbLine(f));
    expect(Object.keys(line)).toEqual(['flow', 'node_name', 'time']);
    expect(line.node_name).toBe('k8s-w1');
    expect(line.time).toBe(f.time);
    const sock = flow(ev('trace-sock', '2025-07-25T17:44:03Z', { xlatePoint: 'post-xlate-fwd', packet: tcp(XWING, 43318, DEATHSTAR, 80, SYN) }));
    expect(sock).toMatchObject({ time: '2025-07-25T17:44:03Z', verdict: 'TRANSLATED', Type: 'SOCK', event_type: { type: 7, sub_type: 2 }, sock_xlate_point: 'SOCK_XLATE_POINT_POST_DIRECTION_FWD', Summary: 'TCP' });
    expect(sock.is_reply).toBeUndefined();
    expect(jsonpbLine({ ...f, Summary: 'a<b&c>' } as Flow)).toContain('a\\u003cb\\u0026c\\u003e');
  });

  it('workloads: a Deployment replica names its Deployment, a bare pod none', () => {
    expect(workloadsOf({ name: 'deathstar-8c4c77fb7-nnzkt', namespace: 'default', labels: {} })).toEqual([{ name: 'deathstar', kind: 'Deployment' }]);
    expect(workloadsOf({ name: 'web-api-6b9c5d4f8b-x2z7q', namespace: 'default', labels: { 'pod-template-hash': '6b9c5d4f8b' } })).toEqual([{ name: 'web-api', kind: 'Deployment' }]);
    expect(workloadsOf({ name: 'xwing', namespace: 'default', labels: {} })).toBeUndefined();
  });
});

describe('other output formats', () => {
  const flows = [
    flow(ev('trace', '2025-07-25T17:44:03.816Z', { observationPoint: 'to-endpoint', ctState: 'new', packet: tcp(XWING, 43318, DEATHSTAR, 80, SYN) })),
    flow(ev('drop', '2025-07-25T17:44:04.001Z', { reason: 133, packet: tcp(XWING, 43319, DEATHSTAR, 80, SYN) })),
  ];

  it('dict: key: value blocks separated by ------------', () => {
    const p = new FlowPrinter('dict');
    expect(flows.map((f) => p.flow(f)).join('') + p.close()).toBe(
      '  TIMESTAMP: Jul 25 17:44:03.816\n     SOURCE: default/xwing:43318\nDESTINATION: default/deathstar-8c4c77fb7-nnzkt:80\n       TYPE: to-endpoint\n    VERDICT: FORWARDED\n    SUMMARY: TCP Flags: SYN\n'
      + '------------\n'
      + '  TIMESTAMP: Jul 25 17:44:04.001\n     SOURCE: default/xwing:43319\nDESTINATION: default/deathstar-8c4c77fb7-nnzkt:80\n       TYPE: Policy denied\n    VERDICT: DROPPED\n    SUMMARY: TCP Flags: SYN\n');
  });

  it('table: aligned columns (tabwriter, padding 3) after the last flow', () => {
    const p = new FlowPrinter('table');
    expect(flows.map((f) => p.flow(f)).join('')).toBe('');
    expect(p.close()).toBe(
      'TIMESTAMP             SOURCE                DESTINATION                            TYPE            VERDICT     SUMMARY\n'
      + 'Jul 25 17:44:03.816   default/xwing:43318   default/deathstar-8c4c77fb7-nnzkt:80   to-endpoint     FORWARDED   TCP Flags: SYN\n'
      + 'Jul 25 17:44:04.001   default/xwing:43319   default/deathstar-8c4c77fb7-nnzkt:80   Policy denied   DROPPED     TCP Flags: SYN\n');
  });

  it('lost events in compact and json', () => {
    expect(new FlowPrinter('compact').lost(7)).toBe('EVENTS LOST: OBSERVER_EVENTS_QUEUE CPU(0) 7\n');
    expect(JSON.parse(new FlowPrinter('jsonpb').lost(7, '2025-07-25T17:44:04Z'))).toEqual({ lost_events: { source: 'OBSERVER_EVENTS_QUEUE', num_events_lost: '7', cpu: null }, time: '2025-07-25T17:44:04Z' });
  });

  it('StampMilli pads the day with a space', () => {
    expect(stampMilli('2025-12-02T05:36:24.490Z')).toBe('Dec  2 05:36:24.490');
  });
});

describe('hubble status', () => {
  it('prints REFERENCE.md\'s shape with thousands separators', () => {
    expect(statusText({ currentFlows: 11282, maxFlows: 12285, seenFlows: 50000, flowsPerSecond: 35.22, connectedNodes: 3, totalNodes: 3, uptimeSeconds: 100, lostEvents: 0 }))
      .toBe('Healthcheck (via localhost:4245): Ok\nCurrent/Max Flows: 11,282/12,285 (91.84%)\nFlows/s: 35.22\nConnected Nodes: 3/3\n');
    expect(grouping(1234567)).toBe('1,234,567');
    expect(statusText({ currentFlows: 0, maxFlows: 4095, seenFlows: 0, flowsPerSecond: 0, connectedNodes: 1, totalNodes: 1, uptimeSeconds: 0, lostEvents: 0 }))
      .toBe('Healthcheck (via localhost:4245): Ok\nCurrent/Max Flows: 0/4,095 (0.00%)\nFlows/s: N/A\nConnected Nodes: 1/1\n');
  });
});

describe('ring', () => {
  const trace = (i: number, t = Date.UTC(2025, 6, 25, 17, 0, i)) => ev('trace', new Date(t).toISOString(), { observationPoint: 'to-endpoint', ctState: 'new', packet: tcp(XWING, 40000 + i, DEATHSTAR, 80, SYN) });

  it('keeps the newest capacity flows, counts every one seen', () => {
    let now = Date.UTC(2025, 6, 25, 17, 0, 0);
    const h = new Hubble({ capacity: 5, nodeName: 'n1', resolver, now: () => now });
    for (let i = 0; i < 12; i++) {
      h.ingest(trace(i));
      now += 500;
    }
    const s = h.status();
    expect([s.currentFlows, s.maxFlows, s.seenFlows, s.connectedNodes, s.totalNodes]).toEqual([5, 5, 12, 1, 1]);
    expect(h.flows().map((f) => f.l4!.TCP!.source_port)).toEqual([40007, 40008, 40009, 40010, 40011]);
    expect(h.recent(2).map((f) => f.l4!.TCP!.source_port)).toEqual([40010, 40011]);
    expect(h.flows({ number: 2, first: true }).map((f) => f.l4!.TCP!.source_port)).toEqual([40007, 40008]);
    expect(h.flows({ since: Date.UTC(2025, 6, 25, 17, 0, 9), until: Date.UTC(2025, 6, 25, 17, 0, 10) }).map((f) => f.l4!.TCP!.source_port)).toEqual([40009, 40010]);
    expect(s.flowsPerSecond).toBe(2); // 12 flows in the 6 s since start
  });

  it('flows/s counts the last minute only', () => {
    let now = 1_000_000;
    const h = new Hubble({ capacity: 100, nodeName: 'n1', resolver, now: () => now });
    for (let i = 0; i < 30; i++) h.ingest(trace(i));
    now += 120_000;
    for (let i = 0; i < 60; i++) h.ingest(trace(i));
    expect(h.status().flowsPerSecond).toBe(1);
  });

  it('a reply translated back to the ClusterIP shows the backend it came from (orig-ip)', () => {
    const h = new Hubble({ capacity: 10, nodeName: 'n1', resolver });
    const t = '2025-07-25T17:47:52.956Z';
    h.ingest(ev('trace-sock', t, { xlatePoint: 'pre-xlate-rev', packet: tcp(DEATHSTAR, 80, XWING, 60920, SYN | ACK) }));
    const f = h.ingest(ev('trace', t, { observationPoint: 'to-endpoint', ctState: 'reply', packet: tcp(VIP, 80, XWING, 60920, SYN | ACK) }))!;
    expect(compactLine(f)).toBe('Jul 25 17:47:52.956: default/xwing:60920 (ID:7207) <- default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) to-endpoint FORWARDED (TCP Flags: SYN, ACK)');
    expect(f.IP!.source).toBe(DEATHSTAR);
    const other = h.ingest(ev('trace', t, { observationPoint: 'to-endpoint', ctState: 'reply', packet: tcp(VIP, 443, XWING, 60921, ACK) }))!;
    expect(other.IP!.source).toBe(VIP);
  });

  it('listeners get every flow; agent events make none', () => {
    const h = new Hubble({ capacity: 3, nodeName: 'n1', resolver });
    const got: Flow[] = [];
    const off = h.onFlow((f) => got.push(f));
    h.ingest(trace(1));
    h.ingest({ ...trace(3), type: MSG_AGENT } as RawEvent);
    off();
    h.ingest(trace(2));
    expect(got).toHaveLength(1);
    expect(h.status().seenFlows).toBe(2);
  });
});

describe('cli dispatch', () => {
  it('observe and hubble command lines parse their own flags', () => {
    expect(isHubbleCommand(['observe', '--from-pod', 'x'])).toBe(true);
    expect(isHubbleCommand(['--socket', '/tmp/a.sock', 'hubble', 'status'])).toBe(true);
    expect(isHubbleCommand(['--node=n1', '-h', 'observe'])).toBe(true);
    expect(isHubbleCommand(['monitor', '--type', 'drop'])).toBe(false);
    expect(isHubbleCommand(['--socket', 'observe', 'status'])).toBe(false);
  });
});

describe('agent resolver', () => {
  it('pods by IP with workloads; other addresses by ipcache identity and its labels', () => {
    const r = new AgentResolver({
      pods: () => [{ name: 'deathstar-8c4c77fb7-nnzkt', namespace: 'default', labels: { org: 'empire' }, endpointID: 12 } as never],
      endpoints: () => [{ id: 12, identity: 15933, labels: ['k8s:org=empire'], ipv4: DEATHSTAR } as never, { id: 1, identity: 1, labels: ['reserved:host'], ipv4: '10.0.1.1' } as never],
      lookupIdentity: (ip) => (ip.startsWith('10.0.1.') ? 1 : 2),
      identities: () => new Map([[1, ['reserved:host']], [2, ['reserved:world']]]),
    });
    expect(r.resolve(DEATHSTAR)).toEqual({ ID: 12, identity: 15933, namespace: 'default', labels: ['k8s:org=empire'], pod_name: 'deathstar-8c4c77fb7-nnzkt', workloads: [{ name: 'deathstar', kind: 'Deployment' }] });
    expect(r.resolve('10.0.1.1')).toEqual({ ID: 1, identity: 1, labels: ['reserved:host'] });
    expect(r.resolve('8.8.8.8')).toEqual({ identity: 2, labels: ['reserved:world'] });
    expect(r.resolve('8.8.8.8', 6)).toEqual({ identity: 6, labels: ['reserved:remote-node'] });
  });
});
