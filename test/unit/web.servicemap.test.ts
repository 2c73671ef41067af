// The web page's service map: synthetic flows folded into workload nodes and verdict-counted edges.
import { describe, it, expect } from 'vitest';
import type { Flow, FlowEndpoint, Verdict } from '../../src/observe/flow.ts';
import { buildServiceMap, nodeOf, portOf } from '../../src/observe/web/servicemap.ts';

let n = 0;
const pod = (name: string, labels: Record<string, string>, identity: number, workload?: string, namespace = 'default'): FlowEndpoint => ({
  ID: identity - 1000, identity, namespace, pod_name: name,
  labels: [...Object.entries(labels).map(([k, v]) => `k8s:${k}=${v}`), `k8s:io.kubernetes.pod.namespace=${namespace}`],
  ...(workload ? { workloads: [{ name: workload, kind: 'Deployment' }] } : {}),
});
const world: FlowEndpoint = { identity: 2, labels: ['reserved:world'] };
const host: FlowEndpoint = { identity: 1, labels: ['reserved:host'] };

function flow(src: FlowEndpoint, dst: FlowEndpoint, verdict: Verdict, port: number, extra: Partial<Flow> = {}): Flow {
  n++;
  return {
    time: `2024-05-01T10:00:${String(n % 60).padStart(2, '0')}.123456789Z`,
    uuid: `uuid-${n}`,
    verdict,
    IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 40000 + n, destination_port: port } },
    source: src,
    destination: dst,
    Type: 'L3_L4',
    node_name: 'node1',
    event_type: { type: verdict === 'DROPPED' ? 1 : 4 },
    traffic_direction: 'INGRESS',
    Summary: `TCP Flags: SYN`,
    ...extra,
  };
}

const deathstarA = pod('deathstar-6f87-abcde', { org: 'empire', class: 'deathstar' }, 1100, 'deathstar');
const deathstarB = pod('deathstar-6f87-fghij', { org: 'empire', class: 'deathstar' }, 1100, 'deathstar');
const tiefighter = pod('tiefighter', { org: 'empire', class: 'tiefighter' }, 1101);
const xwing = pod('xwing', { org: 'alliance', class: 'xwing' }, 1102);

describe('service map aggregation', () => {
  it('groups pods by workload, counts verdicts per edge, and keeps ports and L7 protocols', () => {
    const flows: Flow[] = [
      flow(tiefighter, deathstarA, 'FORWARDED', 80),
      flow(tiefighter, deathstarB, 'FORWARDED', 80),
      flow(tiefighter, deathstarA, 'FORWARDED', 80, { Type: 'L7', l7: { type: 'REQUEST', http: { method: 'POST', url: 'http://deathstar/v1/request-landing', protocol: 'HTTP/1.1' } } }),
      flow(xwing, deathstarA, 'DROPPED', 80, { drop_reason_desc: 'POLICY_DENIED' }),
      flow(xwing, deathstarB, 'DROPPED', 80),
    ];
    const m = buildServiceMap(flows);
    expect(m.flows).toBe(5);
    expect(m.nodes.map((x) => x.id)).toEqual(['default/deathstar', 'default/tiefighter', 'default/xwing']);
    const ds = m.nodes.find((x) => x.id === 'default/deathstar')!;
    expect(ds).toMatchObject({ kind: 'workload', label: 'deathstar', namespace: 'default', workloadKind: 'Deployment', identities: [1100] });
    expect(ds.pods).toEqual(['deathstar-6f87-abcde', 'deathstar-6f87-fghij']);
    expect(ds.labels).toEqual(['org=empire', 'class=deathstar']);
    expect(m.nodes.find((x) => x.id === 'default/tiefighter')).toMatchObject({ label: 'tiefighter', workloadKind: 'Pod' });
    expect(m.edges).toEqual([
      expect.objectContaining({ id: 'default/tiefighter->default/deathstar', verdicts: { FORWARDED: 3 }, ports: ['80/TCP'], l7: ['HTTP'], flows: 3 }),
      expect.objectContaining({ id: 'default/xwing->default/deathstar', verdicts: { DROPPED: 2 }, ports: ['80/TCP'], l7: [], flows: 2 }),
    ]);
  });

  it('keeps edges client → server: replies and L7 responses add no reverse edge and no verdict', () => {
    const reply = flow(deathstarA, tiefighter, 'FORWARDED', 40001, { is_reply: true, l4: { TCP: { source_port: 80, destination_port: 40001 } } });
    const response = flow(deathstarA, tiefighter, 'FORWARDED', 40001, {
      Type: 'L7', l7: { type: 'RESPONSE', http: { code: 200, method: 'POST', url: '/v1/request-landing', protocol: 'HTTP/1.1' } },
    });
    const m = buildServiceMap([flow(tiefighter, deathstarA, 'FORWARDED', 80), reply, response]);
    expect(m.edges).toHaveLength(1);
    expect(m.edges[0]).toMatchObject({ source: 'default/tiefighter', destination: 'default/deathstar', verdicts: { FORWARDED: 1 }, ports: ['80/TCP'], l7: ['HTTP'] });
  });

  it('replies the datapath did not mark (conntrack made again, an L7 proxy leg, a drop) draw no edge with the client\'s ephemeral port', () => {
    const tcp = (sp: number, dp: number, flags: Record<string, boolean>) => ({ l4: { TCP: { source_port: sp, destination_port: dp, flags } } });
    const m = buildServiceMap([
      flow(tiefighter, deathstarA, 'FORWARDED', 80, { is_reply: false, ...tcp(40424, 80, { SYN: true }) }),
      flow(deathstarA, tiefighter, 'FORWARDED', 40424, { is_reply: false, ...tcp(80, 40424, { ACK: true, FIN: true }) }),
      flow(deathstarA, tiefighter, 'DROPPED', 50672, { is_reply: undefined, ...tcp(80, 50672, { ACK: true }) }),
      // Only the server's SYN-ACK of this connection is in the window: still the server's side.
      flow(deathstarB, xwing, 'FORWARDED', 38000, { is_reply: undefined, ...tcp(8080, 38000, { SYN: true, ACK: true }) }),
      flow(deathstarB, xwing, 'FORWARDED', 38000, { is_reply: false, ...tcp(8080, 38000, { ACK: true }) }),
    ]);
    expect(m.edges.map((e) => `${e.source} -> ${e.destination} ${e.ports.join(',')}`)).toEqual([
      'default/tiefighter -> default/deathstar 80/TCP',
      'default/xwing -> default/deathstar ',
    ]);
    expect(m.edges[0]).toMatchObject({ verdicts: { FORWARDED: 1 }, flows: 1 });
  });

  it('a workload card names the cluster nodes its pods run on (flows of their own agent)', () => {
    const local = (ep: FlowEndpoint) => ep;
    const remote = ({ ID: _id, ...ep }: FlowEndpoint) => ep;
    const m = buildServiceMap([
      flow(local(tiefighter), remote(deathstarA), 'FORWARDED', 80, { node_name: 'k8s-w2' }),
      flow(remote(tiefighter), local(deathstarA), 'FORWARDED', 80, { node_name: 'k8s-w1' }),
      flow(remote(tiefighter), local(deathstarB), 'FORWARDED', 80, { node_name: 'k8s-ctr' }),
    ]);
    expect(m.nodes.map((x) => `${x.id} ${x.nodes.join(',')}`)).toEqual(['default/deathstar k8s-ctr,k8s-w1', 'default/tiefighter k8s-w2']);
  });

  it('an edge seen only through a response still shows its L7 protocol', () => {
    const response = flow(deathstarA, tiefighter, 'FORWARDED', 1, { Type: 'L7', l7: { type: 'RESPONSE', http: { code: 403, method: 'PUT', url: '/', protocol: 'HTTP/1.1' } } });
    const m = buildServiceMap([response]);
    expect(m.edges).toEqual([expect.objectContaining({ source: 'default/tiefighter', destination: 'default/deathstar', flows: 0, verdicts: {}, l7: ['HTTP'] })]);
  });

  it('mixed verdicts on one edge are counted apart; ports sort numerically; protocols per port', () => {
    const m = buildServiceMap([
      flow(tiefighter, deathstarA, 'FORWARDED', 8080),
      flow(tiefighter, deathstarA, 'DROPPED', 443),
      flow(tiefighter, deathstarA, 'FORWARDED', 80),
      flow(tiefighter, deathstarA, 'AUDIT', 53, { l4: { UDP: { source_port: 5000, destination_port: 53 } }, Type: 'L7', l7: { type: 'REQUEST', dns: { query: 'x.' } } }),
    ]);
    expect(m.edges[0]).toMatchObject({ verdicts: { FORWARDED: 2, DROPPED: 1, AUDIT: 1 }, ports: ['53/UDP', '80/TCP', '443/TCP', '8080/TCP'], l7: ['DNS'] });
  });

  it('outcomes: a source-side FORWARDED verdict followed by a destination-side drop draws only red', () => {
    const egress = (v: Verdict) => flow(xwing, deathstarA, v, 80, { traffic_direction: 'EGRESS', event_type: { type: 5 } });
    const ingress = (v: Verdict, extra: Partial<Flow> = {}) => flow(xwing, deathstarA, v, 80, { traffic_direction: 'INGRESS', ...extra });
    const outcomes = (flows: Flow[]) => buildServiceMap(flows).edges[0].outcomes;
    // The Star Wars xwing: allowed out of its own endpoint, dropped at the deathstar.
    expect(outcomes([egress('FORWARDED'), ingress('DROPPED'), ingress('DROPPED', { event_type: { type: 1, sub_type: 133 } })])).toEqual(['DROPPED']);
    // Once the policy allows it, delivery shows: both curves over the window.
    expect(outcomes([egress('FORWARDED'), ingress('DROPPED'), egress('FORWARDED'), ingress('FORWARDED', { trace_observation_point: 'TO_ENDPOINT' })])).toEqual(['DROPPED', 'FORWARDED']);
    // Destination never observed here (another node, world): the egress verdict is all there is.
    expect(outcomes([egress('FORWARDED')])).toEqual(['FORWARDED']);
    // Dropped on the way out.
    expect(outcomes([egress('DROPPED')])).toEqual(['DROPPED']);
    // L7 requests the proxy forwarded were delivered; audit-only edges are neither.
    expect(outcomes([flow(tiefighter, deathstarA, 'FORWARDED', 80, { traffic_direction: undefined, Type: 'L7', l7: { type: 'REQUEST', http: { method: 'GET', url: '/', protocol: 'HTTP/1.1' } } })])).toEqual(['FORWARDED']);
    expect(outcomes([flow(tiefighter, deathstarA, 'AUDIT', 80)])).toEqual(['other']);
  });

  it('non-pod peers become world / host / remote-node nodes; world splits by DNS name', () => {
    const m = buildServiceMap([
      flow(tiefighter, world, 'FORWARDED', 443, { destination_names: ['api.github.com'] }),
      flow(tiefighter, world, 'DROPPED', 443),
      flow(host, deathstarA, 'FORWARDED', 80),
      flow({ identity: 6, labels: ['reserved:remote-node'] }, deathstarA, 'FORWARDED', 80),
      flow({ identity: 0, labels: [] }, deathstarA, 'DROPPED', 80),
    ]);
    const ids = m.nodes.map((x) => x.id);
    expect(ids).toEqual(['default/deathstar', 'default/tiefighter', 'host', 'remote-node', 'unknown', 'world', 'world:api.github.com']);
    expect(m.nodes.find((x) => x.id === 'world:api.github.com')).toMatchObject({ kind: 'world', label: 'api.github.com' });
    expect(m.nodes.find((x) => x.id === 'host')).toMatchObject({ kind: 'host', identities: [1] });
    expect(m.edges.map((e) => `${e.id} ${Object.keys(e.verdicts)}`)).toEqual([
      'default/tiefighter->world DROPPED',
      'default/tiefighter->world:api.github.com FORWARDED',
      'host->default/deathstar FORWARDED',
      'remote-node->default/deathstar FORWARDED',
      'unknown->default/deathstar DROPPED',
    ]);
  });

  it('a pod of another node (identity, labels, no pod name) is named by namespace and app label', () => {
    const remote: FlowEndpoint = { identity: 4242, labels: ['k8s:app=echo', 'k8s:io.kubernetes.pod.namespace=prod'] };
    expect(nodeOf(remote)).toMatchObject({ id: 'prod/echo', kind: 'workload', label: 'echo', namespace: 'prod' });
    expect(nodeOf({ identity: 4243, labels: ['k8s:foo=bar'] })).toMatchObject({ id: 'identity:4243', kind: 'identity' });
  });

  it('socket translations name nodes but draw no edge; ICMP and missing L4', () => {
    const sock = flow(tiefighter, { identity: 2, labels: ['reserved:world'] }, 'TRANSLATED', 80, { Type: 'SOCK' });
    const icmp = flow(tiefighter, deathstarA, 'FORWARDED', 0, { l4: { ICMPv4: { type: 8, code: 0 } } });
    const bare = flow(tiefighter, deathstarA, 'FORWARDED', 0, { l4: undefined });
    expect(portOf(icmp)).toBe('ICMPv4');
    expect(portOf(bare)).toBeUndefined();
    const m = buildServiceMap([sock, icmp, bare]);
    expect(m.edges.map((e) => e.id)).toEqual(['default/tiefighter->default/deathstar']);
    expect(m.edges[0].ports).toEqual(['ICMPv4']);
    expect(m.nodes.map((x) => x.id)).toContain('world');
  });

  it('handles an empty ring and skips malformed entries', () => {
    expect(buildServiceMap([])).toEqual({ nodes: [], edges: [], flows: 0 });
    expect(buildServiceMap([undefined as unknown as Flow, { time: 'x' } as Flow])).toEqual({ nodes: [], edges: [], flows: 0 });
  });

  it('folds a full ring of 65,536 flows over 50 workloads', () => {
    const pods = Array.from({ length: 50 }, (_, i) => pod(`app${i}-x`, { app: `app${i}` }, 2000 + i, `app${i}`));
    const flows = Array.from({ length: 65536 }, (_, i) => flow(pods[i % 50], pods[(i * 7) % 50], i % 5 ? 'FORWARDED' : 'DROPPED', 80 + (i % 3)));
    const m = buildServiceMap(flows);
    expect(m.nodes).toHaveLength(50);
    expect(m.flows).toBe(65536);
  });
});
