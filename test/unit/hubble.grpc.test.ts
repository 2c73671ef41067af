// Hubble's gRPC Observer API and relay, spoken to by a grpc-js client built from the same upstream protos.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import type { Flow, FlowEndpoint } from '../../src/observe/flow.ts';
import { Hubble } from '../../src/observe/hubble/observer.ts';
import { flowFromMessage, flowMessage } from '../../src/observe/hubble/grpc/convert.ts';
import { observerClient, observerService, type GetFlowsRequest, type GetFlowsResponse, type ObserverClient, type ServerStatusResponse, type GetNodesResponse, type GetNamespacesResponse } from '../../src/observe/hubble/grpc/proto.ts';
import { startObserverServer } from '../../src/observe/hubble/grpc/server.ts';
import { startRelay, type Relay } from '../../src/observe/hubble/grpc/relay.ts';
import type { GrpcServer } from '../../src/observe/hubble/grpc/serve.ts';
import { startHubbleGrpc } from '../../src/observe/hubble/grpc/index.ts';
import type { Logger } from 'pino';

const pod = (name: string, identity: number): FlowEndpoint => ({
  ID: identity % 4000, identity, namespace: 'default', pod_name: name,
  labels: [`k8s:class=${name}`, 'k8s:io.cilium.k8s.policy.cluster=default', 'k8s:io.kubernetes.pod.namespace=default'],
});
const XWING = { ip: '10.0.1.160', ep: pod('xwing', 7207) };
const DEATHSTAR = { ip: '10.0.1.167', ep: { ...pod('deathstar-8c4c77fb7-nnzkt', 15933), workloads: [{ name: 'deathstar', kind: 'Deployment' }] } };
const TIEFIGHTER = { ip: '10.0.2.9', ep: pod('tiefighter', 9225) };
let seq = 0;

function flow(node: string, time: string, src: typeof XWING, dst: typeof XWING, extra: Partial<Flow> = {}): Flow {
  return {
    time, uuid: `uuid-${++seq}`, verdict: 'FORWARDED', IP: { source: src.ip, destination: dst.ip, ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 40000 + seq, destination_port: 80, flags: { SYN: true } } }, source: src.ep, destination: dst.ep, Type: 'L3_L4',
    node_name: node, event_type: { type: 4, sub_type: 0 }, traffic_direction: 'INGRESS', trace_observation_point: 'TO_ENDPOINT',
    is_reply: false, Summary: 'TCP Flags: SYN', ...extra,
  };
}
const drop = (node: string, time: string, src: typeof XWING, dst: typeof XWING): Flow => flow(node, time, src, dst, {
  verdict: 'DROPPED', drop_reason: 133, drop_reason_desc: 'POLICY_DENIED', event_type: { type: 1, sub_type: 133 }, trace_observation_point: undefined, is_reply: undefined,
});

function observer(node: string, flows: Flow[], capacity = 16): Hubble {
  const h = new Hubble({ capacity, nodeName: node, resolver: { resolve: () => ({ identity: 2, labels: ['reserved:world'] }) } });
  for (const f of flows) h.add(f);
  return h;
}

function collect(client: ObserverClient, req: GetFlowsRequest): Promise<GetFlowsResponse[]> {
  return new Promise((resolve, reject) => {
    const out: GetFlowsResponse[] = [];
    const s = client.GetFlows(req);
    s.on('data', (r: GetFlowsResponse) => out.push(r));
    s.on('error', reject);
    s.on('end', () => resolve(out));
  });
}

/** A following stream whose next responses can be awaited one by one. */
function follow(client: ObserverClient, req: GetFlowsRequest) {
  const stream = client.GetFlows({ ...req, follow: true });
  const queue: GetFlowsResponse[] = [];
  const waiters: Array<(r: GetFlowsResponse) => void> = [];
  stream.on('data', (r: GetFlowsResponse) => (waiters.length ? waiters.shift()!(r) : queue.push(r)));
  stream.on('error', () => {});
  return {
    next: () => new Promise<GetFlowsResponse>((resolve) => (queue.length ? resolve(queue.shift()!) : waiters.push(resolve))),
    cancel: () => stream.cancel(),
  };
}

const unary = <T>(client: ObserverClient, method: 'ServerStatus' | 'GetNodes' | 'GetNamespaces'): Promise<T> => new Promise((resolve, reject) => {
  (client[method] as (req: object, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: T) => void) => void)({}, {}, (e, r) => (e ? reject(e) : resolve(r!)));
});

const podsOf = (rs: GetFlowsResponse[]) => rs.filter((r) => r.flow).map((r) => `${r.flow!.source!.pod_name}>${r.flow!.destination!.pod_name} ${r.flow!.verdict}`);

describe('flow.Flow messages', () => {
  const wire = observerService.GetFlows;
  const roundTrip = (f: Flow) => flowFromMessage((wire.responseDeserialize(wire.responseSerialize({ flow: flowMessage(f) })) as GetFlowsResponse).flow!);

  it('are encoded with upstream field numbers (what a Go client decodes)', () => {
    const bytes = wire.responseSerialize({ flow: { verdict: 'DROPPED', trace_observation_point: 'TO_ENDPOINT' }, node_name: 'n' }) as Buffer;
    // GetFlowsResponse.flow = 1 (len 5): Flow.verdict = 2 → DROPPED (2); Flow.trace_observation_point = 24 → TO_ENDPOINT (101);
    // then GetFlowsResponse.node_name = 1000 (tag 8002 as a varint: c2 3e).
    expect(bytes.toString('hex')).toBe('0a05' + '1002' + 'c00165' + 'c23e01' + Buffer.from('n').toString('hex'));
  });

  it('carry every field ciliary fills, back to the same Flow', () => {
    const T = '2026-12-01T19:00:00';
    const http = flow('k8s-w1', `${T}.123456Z`, TIEFIGHTER, DEATHSTAR, {
      Type: 'L7', event_type: { type: 129 }, l4: { TCP: { source_port: 52296, destination_port: 80 } }, trace_observation_point: undefined, is_reply: true,
      l7: { type: 'RESPONSE', latency_ns: '1400000', http: { code: 200, method: 'POST', url: 'http://deathstar/v1/request-landing', protocol: 'HTTP/1.1', headers: [{ key: 'x', value: 'y' }] } },
      destination_service: { name: 'deathstar', namespace: 'default' }, Summary: 'HTTP/1.1 200 1ms (POST http://deathstar/v1/request-landing)',
    });
    const dns = flow('k8s-w1', `${T}.500Z`, XWING, DEATHSTAR, {
      Type: 'L7', event_type: { type: 129 }, l4: { UDP: { source_port: 5353, destination_port: 53 } }, trace_observation_point: undefined, is_reply: false,
      l7: { type: 'REQUEST', dns: { query: 'deathstar.default.svc.cluster.local.', ips: ['10.96.41.44'], rcode: 0, qtypes: ['A'] } }, destination_names: ['deathstar.default.svc.cluster.local'],
    });
    const xlate = flow('k8s-w1', `${T}Z`, XWING, DEATHSTAR, { Type: 'SOCK', event_type: { type: 7, sub_type: 2 }, verdict: 'TRANSLATED', sock_xlate_point: 'SOCK_XLATE_POINT_POST_DIRECTION_FWD', trace_observation_point: undefined, is_reply: undefined });
    const icmp = flow('k8s-w1', `${T}.000000007Z`, XWING, DEATHSTAR, { l4: { ICMPv4: { type: 8, code: 0 } }, event_type: { type: 4, sub_type: 11 }, trace_observation_point: 'TO_NETWORK', policy_match_type: 2 });
    for (const f of [http, dns, xlate, icmp, drop('k8s-w1', `${T}.250Z`, XWING, DEATHSTAR)]) expect(roundTrip(f)).toEqual(f);
  });
});

/** "YYYY-MM-DDTHH:MM:0" some minutes ago: flows of the last hour (GetNamespaces' window), seconds appended. */
const minutesAgo = (m: number) => `${new Date(Date.now() - m * 60_000).toISOString().slice(0, 17)}0`;

describe('Observer gRPC server', () => {
  const T = minutesAgo(5);
  const hubble = observer('k8s-w1', [
    flow('k8s-w1', `${T}1.000000001Z`, XWING, DEATHSTAR),
    drop('k8s-w1', `${T}2.5Z`, XWING, DEATHSTAR),
    flow('k8s-w1', `${T}3.123456789Z`, TIEFIGHTER, DEATHSTAR, { l4: { TCP: { source_port: 52296, destination_port: 80, flags: { ACK: true, PSH: true } } } }),
    flow('k8s-w1', `${T}4Z`, DEATHSTAR, TIEFIGHTER, { is_reply: true, traffic_direction: 'EGRESS', trace_observation_point: 'TO_NETWORK', event_type: { type: 4, sub_type: 11 } }),
  ]);
  let server: GrpcServer;
  let client: ObserverClient;
  beforeAll(async () => {
    server = await startObserverServer({ address: '127.0.0.1:0', hubble, nodeName: 'k8s-w1', version: '0.1.0' });
    client = observerClient(`127.0.0.1:${server.port}`);
  });
  afterAll(async () => { client.close(); await server.close(); });

  it('GetFlows number: the last N, decoded as flow.Flow with enum names, IPs, pods and timestamps', async () => {
    const rs = await collect(client, { number: 2 });
    expect(podsOf(rs)).toEqual(['tiefighter>deathstar-8c4c77fb7-nnzkt FORWARDED', 'deathstar-8c4c77fb7-nnzkt>tiefighter FORWARDED']);
    const [a, b] = rs;
    expect(a.response_types).toBe('flow');
    expect(a.node_name).toBe('k8s-w1');
    expect(a.time).toEqual({ seconds: String(Date.parse(`${T}3Z`) / 1000), nanos: 123456789 });
    expect(a.flow).toMatchObject({
      verdict: 'FORWARDED', Type: 'L3_L4', IP: { source: '10.0.2.9', destination: '10.0.1.167', ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 52296, destination_port: 80, flags: { ACK: true, PSH: true } } },
      source: { identity: 9225, namespace: 'default', pod_name: 'tiefighter', cluster_name: 'default' },
      destination: { identity: 15933, pod_name: 'deathstar-8c4c77fb7-nnzkt', workloads: [{ name: 'deathstar', kind: 'Deployment' }] },
      event_type: { type: 4 }, traffic_direction: 'INGRESS', trace_observation_point: 'TO_ENDPOINT', is_reply: { value: false }, node_name: 'k8s-w1',
    });
    expect(a.flow!.source!.labels).toContain('k8s:class=tiefighter');
    expect(b.flow).toMatchObject({ trace_observation_point: 'TO_NETWORK', traffic_direction: 'EGRESS', is_reply: { value: true }, reply: true, event_type: { type: 4, sub_type: 11 } });
  });

  it('GetFlows first: the oldest N; no number: every flow held', async () => {
    const [first] = await collect(client, { number: 1, first: true });
    expect(first.flow).toMatchObject({ source: { pod_name: 'xwing' }, time: { nanos: 1 } });
    expect(await collect(client, {})).toHaveLength(4);
  });

  it('a field mask keeps only the fields asked for', async () => {
    const [r] = await collect(client, { number: 1, field_mask: { paths: ['verdict', 'source.pod_name', 'l4.TCP.destination_port'] } });
    expect(r.flow).toEqual({ verdict: 'FORWARDED', source: { pod_name: 'deathstar-8c4c77fb7-nnzkt' }, l4: { TCP: { destination_port: 80 }, protocol: 'TCP' } });
  });

  it('since/until select by time', async () => {
    const rs = await collect(client, { since: { seconds: Date.parse(`${T}2Z`) / 1000 }, until: { seconds: Date.parse(`${T}3Z`) / 1000, nanos: 500_000_000 } });
    expect(rs.map((r) => r.flow!.uuid)).toEqual(['uuid-2', 'uuid-3']);
  });

  it('a whitelist (source pod and verdict DROPPED) keeps the policy drop', async () => {
    const rs = await collect(client, { whitelist: [{ source_pod: ['default/xwing'], verdict: ['DROPPED'] }] });
    expect(rs).toHaveLength(1);
    expect(rs[0].flow).toMatchObject({ verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', drop_reason: 133, event_type: { type: 1, sub_type: 133 }, source: { pod_name: 'xwing' } });
    expect(rs[0].flow!.is_reply).toBeUndefined();
  });

  it('a blacklist removes what it matches; two whitelist filters are OR-ed', async () => {
    expect(podsOf(await collect(client, { blacklist: [{ source_pod: ['xwing'] }] })))
      .toEqual(['tiefighter>deathstar-8c4c77fb7-nnzkt FORWARDED', 'deathstar-8c4c77fb7-nnzkt>tiefighter FORWARDED']);
    const either = await collect(client, { whitelist: [{ source_ip: ['10.0.2.9'] }, { tcp_flags: [{ SYN: true }], event_type: [{ type: 1 }] }] });
    expect(either.map((r) => r.flow!.uuid)).toEqual(['uuid-2', 'uuid-3']);
    expect((await collect(client, { whitelist: [{ destination_workload: [{ name: 'deathstar' }], traffic_direction: ['INGRESS'] }] })).map((r) => r.flow!.uuid))
      .toEqual(['uuid-1', 'uuid-2', 'uuid-3']);
  });

  it('a filter on a field ciliary cannot match, or a bad regex, is INVALID_ARGUMENT', async () => {
    await expect(collect(client, { whitelist: [{ http_header: [{ key: 'x', value: 'y' }] }] }))
      .rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'flow filter: unknown field "http_header"' });
    await expect(collect(client, { blacklist: [{ http_path: ['('] }] })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'flow filter: http_path: invalid regular expression (' });
  });

  it('follow streams a flow added after the call, filtered', async () => {
    const f = follow(client, { number: 1, whitelist: [{ destination_pod: ['default/deathstar'] }] });
    expect((await f.next()).flow!.uuid).toBe('uuid-3'); // the history: the server is subscribed now
    hubble.add(flow('k8s-w1', `${T}5Z`, XWING, TIEFIGHTER)); // not to deathstar
    hubble.add(drop('k8s-w1', `${T}6Z`, TIEFIGHTER, DEATHSTAR));
    const live = await f.next();
    expect(live.flow).toMatchObject({ verdict: 'DROPPED', source: { pod_name: 'tiefighter' }, destination: { pod_name: 'deathstar-8c4c77fb7-nnzkt' } });
    f.cancel();
  });

  it('ServerStatus: ring fill, seen flows, uptime and version; GetNodes: this node; health SERVING', async () => {
    const s = await unary<ServerStatusResponse>(client, 'ServerStatus');
    expect(s).toMatchObject({ num_flows: String(hubble.ring.length), max_flows: '16', seen_flows: String(hubble.status().seenFlows), version: '0.1.0' });
    expect(s.num_connected_nodes).toBeUndefined(); // as a Cilium agent: only the relay counts nodes
    const { nodes } = await unary<GetNodesResponse>(client, 'GetNodes');
    expect(nodes).toEqual([expect.objectContaining({ name: 'k8s-w1', state: 'NODE_CONNECTED', version: '0.1.0', max_flows: '16', tls: { enabled: false } })]);
    const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
    const health = new Health(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as { Check: (r: object, cb: (e: Error | null, r: { status: string }) => void) => void; close(): void };
    const res = await new Promise<{ status: string }>((resolve, reject) => health.Check({ service: 'observer.Observer' }, (e, r) => (e ? reject(e) : resolve(r))));
    health.close();
    expect(res.status).toBe('SERVING');
  });

  it('GetNamespaces: the namespaces with flows', async () => {
    expect(await unary<GetNamespacesResponse>(client, 'GetNamespaces')).toEqual({ namespaces: [{ cluster: 'default', namespace: 'default' }] });
  });

  it('a follower is told about events lost before they became flows', async () => {
    let monitorLost = 0;
    const h = new Hubble({ capacity: 4, nodeName: 'k8s-w2', resolver: { resolve: () => ({ identity: 2, labels: [] }) }, monitorLost: () => monitorLost });
    h.add(flow('k8s-w2', `${T}1Z`, XWING, DEATHSTAR));
    const s = await startObserverServer({ address: '127.0.0.1:0', hubble: h, nodeName: 'k8s-w2', version: '0.1.0', lostCheckMs: 20 });
    const c = observerClient(`127.0.0.1:${s.port}`);
    const f = follow(c, { number: 1 });
    expect((await f.next()).flow).toBeDefined();
    monitorLost = 3;
    expect(await f.next()).toMatchObject({ response_types: 'lost_events', lost_events: { source: 'PERF_EVENT_RING_BUFFER', num_events_lost: '3' }, node_name: 'k8s-w2' });
    f.cancel();
    c.close();
    await s.close();
  });
});

describe('relay', () => {
  const T = minutesAgo(4);
  const w1 = observer('k8s-w1', [0, 2, 4].map((s) => flow('k8s-w1', `${T}${s}.5Z`, XWING, DEATHSTAR)));
  const w2 = observer('k8s-w2', [1, 3, 5].map((s) => drop('k8s-w2', `${T}${s}.25Z`, TIEFIGHTER, DEATHSTAR)));
  const servers: GrpcServer[] = [];
  let relay: Relay;
  let client: ObserverClient;
  let w2Port = 0;
  const start = (h: Hubble, node: string, port = 0) => startObserverServer({ address: `127.0.0.1:${port}`, hubble: h, nodeName: node, version: '0.1.0' });
  beforeAll(async () => {
    servers.push(await start(w1, 'k8s-w1'), await start(w2, 'k8s-w2'));
    relay = await startRelay({ address: '127.0.0.1:0', peers: servers.map((s) => `127.0.0.1:${s.port}`), version: '0.1.0', sortBufferDrainMs: 50, callTimeoutMs: 1000, retryMs: { initial: 50, max: 200 } });
    client = observerClient(`127.0.0.1:${relay.port}`);
    w2Port = servers[1].port;
  });
  afterEach(async () => {
    if (servers.length < 2) servers.push(await start(w2, 'k8s-w2', w2Port));
    // The relay's channel to the restarted node reconnects with backoff: wait until it is back.
    for (let i = 0; i < 250; i++) {
      if ((await unary<ServerStatusResponse>(client, 'ServerStatus')).num_connected_nodes?.value === 2) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('the relay did not reconnect to k8s-w2');
  });
  afterAll(async () => { client.close(); await relay.close(); for (const s of servers) await s.close(); });

  it('merges both nodes\' flows in time order, after saying which nodes answer', async () => {
    const rs = await collect(client, {});
    expect(rs[0]).toMatchObject({ response_types: 'node_status', node_status: { state_change: 'NODE_CONNECTED', node_names: ['k8s-w1', 'k8s-w2'] } });
    const flows = rs.filter((r) => r.flow);
    expect(flows.map((r) => `${r.node_name} ${r.flow!.verdict} ${r.time!.seconds}`)).toEqual([0, 1, 2, 3, 4, 5].map((s) => {
      const t = Date.parse(`${T}${s}Z`) / 1000;
      return s % 2 ? `k8s-w2 DROPPED ${t}` : `k8s-w1 FORWARDED ${t}`;
    }));
    expect(flows[1].flow).toMatchObject({ drop_reason_desc: 'POLICY_DENIED', source: { pod_name: 'tiefighter' }, IP: { source: '10.0.2.9' } });
    // Filters travel to the nodes.
    expect(podsOf(await collect(client, { whitelist: [{ verdict: ['DROPPED'] }], number: 2 }))).toEqual(Array(2).fill('tiefighter>deathstar-8c4c77fb7-nnzkt DROPPED'));
  });

  it('ServerStatus sums the nodes and says 2/2 connected; GetNodes lists both', async () => {
    const s = await unary<ServerStatusResponse>(client, 'ServerStatus');
    expect(s).toMatchObject({ num_flows: '6', max_flows: '32', seen_flows: '6', num_connected_nodes: { value: 2 }, version: '0.1.0' });
    expect(s.num_unavailable_nodes?.value ?? 0).toBe(0);
    const { nodes } = await unary<GetNodesResponse>(client, 'GetNodes');
    expect(nodes!.map((n) => [n.name, n.state, n.num_flows])).toEqual([['k8s-w1', 'NODE_CONNECTED', '3'], ['k8s-w2', 'NODE_CONNECTED', '3']]);
    expect(await unary<GetNamespacesResponse>(client, 'GetNamespaces')).toEqual({ namespaces: [{ cluster: 'default', namespace: 'default' }] });
  });

  it('a stopped node is unavailable (1 of 2); the merge goes on with the other', async () => {
    await servers.pop()!.close();
    const s = await unary<ServerStatusResponse>(client, 'ServerStatus');
    expect(s).toMatchObject({ num_flows: '3', num_connected_nodes: { value: 1 }, num_unavailable_nodes: { value: 1 }, unavailable_nodes: ['k8s-w2'] });
    const { nodes } = await unary<GetNodesResponse>(client, 'GetNodes');
    expect(nodes!.map((n) => [n.name, n.state])).toEqual([['k8s-w1', 'NODE_CONNECTED'], ['k8s-w2', 'NODE_UNAVAILABLE']]);
    const rs = await collect(client, {});
    expect(rs.filter((r) => r.node_status).map((r) => [r.node_status!.state_change, r.node_status!.node_names])).toEqual([['NODE_CONNECTED', ['k8s-w1']], ['NODE_UNAVAILABLE', ['k8s-w2']]]);
    expect(rs.filter((r) => r.flow).map((r) => r.node_name)).toEqual(['k8s-w1', 'k8s-w1', 'k8s-w1']);
  });

  it('follow: new flows through the relay; a node that goes away is reported and reconnected', async () => {
    const f = follow(client, { number: 1 });
    expect((await f.next()).node_status).toMatchObject({ state_change: 'NODE_CONNECTED', node_names: ['k8s-w1', 'k8s-w2'] });
    // Each node's newest flow (the history asked for), in time order: both nodes are subscribed now.
    expect([(await f.next()).node_name, (await f.next()).node_name]).toEqual(['k8s-w1', 'k8s-w2']);
    w1.add(flow('k8s-w1', new Date().toISOString(), XWING, TIEFIGHTER));
    expect(await f.next()).toMatchObject({ node_name: 'k8s-w1', flow: { destination: { pod_name: 'tiefighter' } } });
    await servers.pop()!.close();
    expect((await f.next()).node_status).toMatchObject({ state_change: 'NODE_UNAVAILABLE', node_names: ['k8s-w2'] });
    servers.push(await start(w2, 'k8s-w2', w2Port));
    expect((await f.next()).node_status).toMatchObject({ state_change: 'NODE_CONNECTED', node_names: ['k8s-w2'] });
    w2.add(drop('k8s-w2', new Date().toISOString(), XWING, DEATHSTAR));
    expect(await f.next()).toMatchObject({ node_name: 'k8s-w2', flow: { verdict: 'DROPPED', source: { pod_name: 'xwing' } } });
    f.cancel();
  });
});

describe('agent wiring (startHubbleGrpc)', () => {
  it('a relay without hubble-relay-peers relays this node; a busy or bad address is logged, not thrown', async () => {
    const warnings: string[] = [];
    const log = { info: () => {}, warn: (o: { err: string }, msg: string) => warnings.push(`${msg}: ${o.err}`) } as unknown as Logger;
    const h = observer('k8s-ctr', [flow('k8s-ctr', `${minutesAgo(1)}1Z`, XWING, DEATHSTAR)]);
    const node = { nodeName: 'k8s-ctr', version: '0.1.0', log };
    const cfg = { 'hubble-listen-address': '127.0.0.1:0', 'hubble-relay-listen-address': '127.0.0.1:0', 'hubble-relay-peers': '' };
    const g = await startHubbleGrpc(cfg, h, node);
    expect(g.relay!.peers).toEqual([`127.0.0.1:${g.observer!.port}`]);
    const c = observerClient(`127.0.0.1:${g.relay!.port}`);
    const { nodes } = await unary<GetNodesResponse>(c, 'GetNodes');
    expect(nodes!.map((n) => [n.name, n.state, n.num_flows])).toEqual([['k8s-ctr', 'NODE_CONNECTED', '1']]);
    c.close();
    const busy = await startHubbleGrpc({
      'hubble-listen-address': `127.0.0.1:${g.observer!.port}`, 'hubble-relay-listen-address': 'nonsense', 'hubble-relay-peers': g.relay!.peers[0],
    }, h, node);
    expect(busy.observer).toBeUndefined();
    expect(busy.relay).toBeUndefined();
    expect(warnings[0]).toMatch(/^hubble: observer API not serving: .*(address already in use|EADDRINUSE)/i);
    expect(warnings[1]).toBe('hubble relay: not serving: hubble-relay-listen-address: "nonsense" is not host:port or :port');
    await g.close();
  });
});
