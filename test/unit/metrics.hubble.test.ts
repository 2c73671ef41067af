// Hubble metrics: every handler fed synthetic flows, checked for Hubble's exact label names,
// label values and counts; the `hubble-metrics` option syntax and labelsContext.
import { describe, it, expect } from 'vitest';
import { HubbleMetrics, parseMetricList } from '../../src/observe/metrics/hubble/index.ts';
import { render } from '../../src/observe/metrics/exposition.ts';
import type { Flow } from '../../src/observe/flow.ts';

function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([^#\s]\S*?(?:\{.*\})?) (\S+)/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

const client = { ID: 11, identity: 1001, namespace: 'default', pod_name: 'client-7d4b9-x2x9z', labels: ['k8s:app=client', 'k8s:io.kubernetes.pod.namespace=default'], workloads: [{ name: 'client', kind: 'Deployment' }] };
const server = { ID: 22, identity: 1002, namespace: 'shop', pod_name: 'server-0', labels: ['k8s:app.kubernetes.io/name=server'] };

function flow(over: Partial<Flow>): Flow {
  return {
    time: '2025-01-01T00:00:00.000000001Z', uuid: 'u', verdict: 'FORWARDED', IP: { source: '172.20.0.11', destination: '172.20.0.22', ipVersion: 'IPv4' },
    source: client, destination: server, Type: 'L3_L4', node_name: 'n1', event_type: { type: 4 }, Summary: '', ...over,
  };
}

const tcp = (flags: Record<string, boolean>, dport = 8080): Flow['l4'] => ({ TCP: { source_port: 40000, destination_port: dport, flags } });
const httpReq = (dir: 'INGRESS' | 'EGRESS') => flow({ Type: 'L7', event_type: { type: 129 }, traffic_direction: dir, is_reply: false, l4: tcp({}, 80), l7: { type: 'REQUEST', http: { method: 'GET', url: 'http://server/x', protocol: 'HTTP/1.1' } } });
const httpResp = (dir: 'INGRESS' | 'EGRESS', code: number, ms: number) => flow({
  Type: 'L7', event_type: { type: 129 }, traffic_direction: dir, is_reply: true, IP: { source: '172.20.0.22', destination: '172.20.0.11', ipVersion: 'IPv4' },
  source: server, destination: client, l4: tcp({}, 40000), l7: { type: 'RESPONSE', latency_ns: String(ms * 1e6), http: { code, method: 'GET', url: 'http://server/x', protocol: 'HTTP/1.1' } },
});

async function scrape(m: HubbleMetrics): Promise<Map<string, number>> {
  return samples(await render([m.registry], false));
}

describe('hubble-metrics option syntax', () => {
  it('splits handlers on commas and spaces but keeps commas inside option values', () => {
    const specs = parseMetricList('dns:query;ignoreAAAA drop,tcp,flow port-distribution httpV2:exemplars=true;labelsContext=source_ip,source_namespace,destination_ip,traffic_direction,icmp');
    expect(specs.map((s) => s.name)).toEqual(['dns', 'drop', 'tcp', 'flow', 'port-distribution', 'httpV2', 'icmp']);
    const http = specs.find((s) => s.name === 'httpV2')!;
    expect(Object.fromEntries(http.options)).toEqual({ exemplars: 'true', labelsContext: 'source_ip,source_namespace,destination_ip,traffic_direction' });
    expect(parseMetricList('').length).toBe(0);
    expect(Object.fromEntries(specs[0].options)).toEqual({ query: '', ignoreAAAA: '' });
  });

  it('rejects unknown handlers, unknown context labels and http with httpV2', () => {
    expect(() => new HubbleMetrics('dns,bogus')).toThrow(/metric 'bogus' does not exist/);
    expect(() => new HubbleMetrics('drop:labelsContext=source_pod,nope')).toThrow(/invalid labelsContext value: nope/);
    expect(() => new HubbleMetrics('drop:sourceContext=pod|galaxy')).toThrow(/unknown context 'galaxy'/);
    expect(() => new HubbleMetrics('http httpV2')).toThrow(/cannot both/);
    expect(() => new HubbleMetrics('drop drop')).toThrow(/twice/);
  });
});

describe('hubble metric handlers', () => {
  it('flow: hubble_flows_processed_total{protocol,type,subtype,verdict}', async () => {
    const m = new HubbleMetrics('flow');
    m.processFlow(flow({ l4: tcp({ SYN: true }), event_type: { type: 4, sub_type: 0 } }));
    m.processFlow(flow({ l4: tcp({ SYN: true }), event_type: { type: 4, sub_type: 3 } }));
    m.processFlow(flow({ verdict: 'DROPPED', drop_reason: 133, l4: { ICMPv4: { type: 8, code: 0 } }, event_type: { type: 1, sub_type: 133 } }));
    m.processFlow(flow({ verdict: 'DROPPED', l4: { UDP: { source_port: 1, destination_port: 53 } }, event_type: { type: 5 } }));
    m.processFlow(httpReq('EGRESS'));
    m.processFlow(flow({ Type: 'L7', event_type: { type: 129 }, l7: { type: 'REQUEST', dns: { query: 'a.b.' } } }));
    m.processFlow(flow({ Type: 'SOCK', verdict: 'TRANSLATED', event_type: { type: 7, sub_type: 2 } }));
    const s = await scrape(m);
    expect(s.get('hubble_flows_processed_total{protocol="TCP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"}')).toBe(1);
    expect(s.get('hubble_flows_processed_total{protocol="TCP",type="Trace",subtype="to-stack",verdict="FORWARDED"}')).toBe(1);
    expect(s.get('hubble_flows_processed_total{protocol="ICMPv4",type="Drop",subtype="",verdict="DROPPED"}')).toBe(1);
    expect(s.get('hubble_flows_processed_total{protocol="UDP",type="PolicyVerdict",subtype="",verdict="DROPPED"}')).toBe(1);
    expect(s.get('hubble_flows_processed_total{protocol="HTTP",type="L7",subtype="HTTP",verdict="FORWARDED"}')).toBe(1);
    expect(s.get('hubble_flows_processed_total{protocol="DNS",type="L7",subtype="DNS",verdict="FORWARDED"}')).toBe(1);
    expect(s.get('hubble_flows_processed_total{protocol="Unknown flow",type="Unknown",subtype="7",verdict="TRANSLATED"}')).toBe(1);
  });

  it('drop: hubble_drop_total{reason,protocol} with flow.proto enum names', async () => {
    const m = new HubbleMetrics('drop');
    for (let i = 0; i < 5; i++) m.processFlow(flow({ verdict: 'DROPPED', drop_reason: 132, drop_reason_desc: 'INVALID_SOURCE_IP', l4: { ICMPv4: { type: 8, code: 0 } }, event_type: { type: 1, sub_type: 132 } }));
    m.processFlow(flow({ verdict: 'DROPPED', drop_reason: 133, l4: tcp({ SYN: true }), event_type: { type: 1, sub_type: 133 } }));
    m.processFlow(flow({ verdict: 'FORWARDED', l4: tcp({ SYN: true }) }));
    const s = await scrape(m);
    expect(s.get('hubble_drop_total{reason="INVALID_SOURCE_IP",protocol="ICMPv4"}')).toBe(5);
    expect(s.get('hubble_drop_total{reason="POLICY_DENIED",protocol="TCP"}')).toBe(1);
    expect([...s.keys()].filter((k) => k.startsWith('hubble_drop_total')).length).toBe(2);
  });

  it('tcp: hubble_tcp_flags_total{flag,family}, forwarded flows only', async () => {
    const m = new HubbleMetrics('tcp');
    m.processFlow(flow({ l4: tcp({ SYN: true }) }));
    m.processFlow(flow({ l4: tcp({ SYN: true, ACK: true }) }));
    m.processFlow(flow({ l4: tcp({ FIN: true, ACK: true }) }));
    m.processFlow(flow({ l4: tcp({ RST: true }) }));
    m.processFlow(flow({ l4: tcp({ ACK: true, PSH: true }) }));
    m.processFlow(flow({ verdict: 'DROPPED', l4: tcp({ SYN: true }) }));
    const s = await scrape(m);
    expect(s.get('hubble_tcp_flags_total{flag="SYN",family="IPv4"}')).toBe(1);
    expect(s.get('hubble_tcp_flags_total{flag="SYN-ACK",family="IPv4"}')).toBe(1);
    expect(s.get('hubble_tcp_flags_total{flag="FIN",family="IPv4"}')).toBe(1);
    expect(s.get('hubble_tcp_flags_total{flag="RST",family="IPv4"}')).toBe(1);
    expect([...s.keys()].filter((k) => k.startsWith('hubble_tcp_flags_total')).length).toBe(4);
  });

  it('port-distribution: hubble_port_distribution_total{protocol,port}, not for replies or unknown direction', async () => {
    const m = new HubbleMetrics('port-distribution');
    m.processFlow(flow({ l4: tcp({ SYN: true }, 8080), is_reply: false }));
    m.processFlow(flow({ l4: tcp({ SYN: true }, 8080), is_reply: false }));
    m.processFlow(flow({ l4: { UDP: { source_port: 5000, destination_port: 53 } }, is_reply: false }));
    m.processFlow(flow({ l4: { ICMPv4: { type: 8, code: 0 } }, is_reply: false }));
    m.processFlow(flow({ l4: tcp({ ACK: true }, 40000), is_reply: true }));
    m.processFlow(flow({ l4: tcp({ ACK: true }, 9999) }));
    m.processFlow(flow({ verdict: 'DROPPED', l4: tcp({ SYN: true }, 7777), is_reply: false }));
    const s = await scrape(m);
    expect(s.get('hubble_port_distribution_total{protocol="TCP",port="8080"}')).toBe(2);
    expect(s.get('hubble_port_distribution_total{protocol="UDP",port="53"}')).toBe(1);
    expect(s.get('hubble_port_distribution_total{protocol="ICMPv4",port="0"}')).toBe(1);
    expect([...s.keys()].filter((k) => k.startsWith('hubble_port_distribution_total')).length).toBe(3);
  });

  it('icmp: hubble_icmp_total{family,type} with gopacket type names', async () => {
    const m = new HubbleMetrics('icmp');
    m.processFlow(flow({ l4: { ICMPv4: { type: 8, code: 0 } } }));
    m.processFlow(flow({ l4: { ICMPv4: { type: 8, code: 0 } } }));
    m.processFlow(flow({ l4: { ICMPv4: { type: 0, code: 0 } } }));
    m.processFlow(flow({ l4: { ICMPv4: { type: 3, code: 3 } } }));
    m.processFlow(flow({ l4: { ICMPv4: { type: 11, code: 0 } } }));
    m.processFlow(flow({ l4: { ICMPv4: { type: 42, code: 1 } } }));
    const s = await scrape(m);
    expect(s.get('hubble_icmp_total{family="IPv4",type="EchoRequest"}')).toBe(2);
    expect(s.get('hubble_icmp_total{family="IPv4",type="EchoReply"}')).toBe(1);
    expect(s.get('hubble_icmp_total{family="IPv4",type="DestinationUnreachable(Port)"}')).toBe(1);
    expect(s.get('hubble_icmp_total{family="IPv4",type="TimeExceeded(TTLExceeded)"}')).toBe(1);
    expect(s.get('hubble_icmp_total{family="IPv4",type="42(1)"}')).toBe(1);
  });

  it('http: requests{method,protocol,reporter}, responses{method,protocol,status,reporter}, duration histogram', async () => {
    const m = new HubbleMetrics('http');
    m.processFlow(httpReq('EGRESS'));
    m.processFlow(httpReq('INGRESS'));
    m.processFlow(httpResp('INGRESS', 200, 20));
    m.processFlow(httpResp('INGRESS', 503, 2000));
    const s = await scrape(m);
    expect(s.get('hubble_http_requests_total{method="GET",protocol="HTTP/1.1",reporter="client"}')).toBe(1);
    expect(s.get('hubble_http_requests_total{method="GET",protocol="HTTP/1.1",reporter="server"}')).toBe(1);
    expect(s.get('hubble_http_responses_total{method="GET",protocol="HTTP/1.1",status="200",reporter="server"}')).toBe(1);
    expect(s.get('hubble_http_responses_total{method="GET",protocol="HTTP/1.1",status="503",reporter="server"}')).toBe(1);
    expect(s.get('hubble_http_request_duration_seconds_count{method="GET",reporter="server"}')).toBe(2);
    expect(s.get('hubble_http_request_duration_seconds_bucket{le="0.025",method="GET",reporter="server"}')).toBe(1);
    expect(s.get('hubble_http_request_duration_seconds_bucket{le="2.5",method="GET",reporter="server"}')).toBe(2);
    expect(s.get('hubble_http_request_duration_seconds_sum{method="GET",reporter="server"}')).toBeCloseTo(2.02, 6);
  });

  it('httpV2: one requests series per response with status; labelsContext from the request side', async () => {
    const m = new HubbleMetrics('httpV2:exemplars=true;labelsContext=source_ip,source_namespace,source_workload,destination_ip,destination_namespace,destination_workload,traffic_direction');
    m.processFlow(httpReq('EGRESS'));
    m.processFlow(httpResp('EGRESS', 200, 5));
    m.processFlow(httpResp('EGRESS', 200, 7));
    const s = await scrape(m);
    const ctx = 'source_ip="172.20.0.11",source_namespace="default",source_workload="client",destination_ip="172.20.0.22",destination_namespace="shop",destination_workload="",traffic_direction="egress"';
    expect(s.get(`hubble_http_requests_total{${ctx},method="GET",protocol="HTTP/1.1",status="200",reporter="client"}`)).toBe(2);
    expect(s.get(`hubble_http_request_duration_seconds_count{${ctx},method="GET",reporter="client"}`)).toBe(2);
    expect([...s.keys()].some((k) => k.startsWith('hubble_http_responses_total'))).toBe(false);
  });

  it('httpV2 exemplars carry the trace id in OpenMetrics', async () => {
    const m = new HubbleMetrics('httpV2:exemplars=true');
    m.processFlow({ ...httpResp('INGRESS', 200, 5), trace_context: { parent: { trace_id: 'abc123' } } } as Flow);
    const om = await render([m.registry], true);
    expect(om).toMatch(/hubble_http_requests_total\{method="GET",protocol="HTTP\/1.1",status="200",reporter="server"\} 1 # \{traceID="abc123"\} 1 [\d.]+/);
  });

  it('dns: queries and responses with rcode, qtypes, ips_returned (and query when asked)', async () => {
    const m = new HubbleMetrics('dns:query;ignoreAAAA');
    const dns = (over: Partial<Flow>, d: NonNullable<NonNullable<Flow['l7']>['dns']>) => flow({ Type: 'L7', event_type: { type: 129 }, l4: { UDP: { source_port: 5353, destination_port: 53 } }, ...over, l7: { type: over.is_reply ? 'RESPONSE' : 'REQUEST', dns: d } });
    m.processFlow(dns({ is_reply: false }, { query: 'kube-dns.kube-system.svc.cluster.local.', qtypes: ['A'] }));
    m.processFlow(dns({ is_reply: true }, { query: 'kube-dns.kube-system.svc.cluster.local.', qtypes: ['A'], ips: ['10.96.0.10'], rcode: 0, rrtypes: ['A'] } as never));
    m.processFlow(dns({ is_reply: true }, { query: 'nope.', qtypes: ['A'], rcode: 3 }));
    m.processFlow(dns({ is_reply: false }, { query: 'x.', qtypes: ['AAAA'] }));
    m.processFlow(dns({ is_reply: false, verdict: 'DROPPED' }, { query: 'blocked.', qtypes: ['A'] }));
    const s = await scrape(m);
    expect(s.get('hubble_dns_queries_total{rcode="",qtypes="A",ips_returned="0",query="kube-dns.kube-system.svc.cluster.local."}')).toBe(1);
    expect(s.get('hubble_dns_responses_total{rcode="No Error",qtypes="A",ips_returned="1",query="kube-dns.kube-system.svc.cluster.local."}')).toBe(1);
    expect(s.get('hubble_dns_responses_total{rcode="Non-Existent Domain",qtypes="A",ips_returned="0",query="nope."}')).toBe(1);
    expect(s.get('hubble_dns_queries_total{rcode="Policy denied",qtypes="A",ips_returned="0",query="blocked."}')).toBe(1);
    expect(s.get('hubble_dns_response_types_total{type="A",qtypes="A",query="kube-dns.kube-system.svc.cluster.local."}')).toBe(1);
    expect([...s.keys()].some((k) => k.includes('query="x."'))).toBe(false);
  });

  it('sourceContext/destinationContext add source and destination labels', async () => {
    const m = new HubbleMetrics('drop:sourceContext=pod|ip;destinationContext=namespace tcp:sourceContext=app;destinationContext=app|pod-short');
    m.processFlow(flow({ verdict: 'DROPPED', drop_reason: 133, l4: tcp({ SYN: true }), event_type: { type: 1, sub_type: 133 } }));
    m.processFlow(flow({ l4: tcp({ SYN: true }) }));
    m.processFlow(flow({ source: { identity: 2, labels: ['reserved:world'] }, l4: tcp({ RST: true }) }));
    const s = await scrape(m);
    expect(s.get('hubble_drop_total{source="default/client-7d4b9-x2x9z",destination="shop",reason="POLICY_DENIED",protocol="TCP"}')).toBe(1);
    expect(s.get('hubble_tcp_flags_total{flag="SYN",family="IPv4",source="client",destination="server"}')).toBe(1);
    expect(s.get('hubble_tcp_flags_total{flag="RST",family="IPv4",source="",destination="server"}')).toBe(1);
  });

  it('a handler error does not stop the others', async () => {
    const m = new HubbleMetrics('flow,drop');
    m.processFlow({ verdict: 'DROPPED' } as Flow);
    m.processFlow(flow({ verdict: 'DROPPED', drop_reason: 132, l4: { ICMPv4: { type: 8, code: 0 } }, event_type: { type: 1 } }));
    const s = await scrape(m);
    expect(s.get('hubble_drop_total{reason="INVALID_SOURCE_IP",protocol="ICMPv4"}')).toBe(1);
  });
});
