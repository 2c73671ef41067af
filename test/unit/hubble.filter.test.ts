// Hubble filter semantics: one flag's values OR, different flags AND, --pod is from OR to, --not negates
// the next filter; and the /v1/flows API (history, follow, a slow reader's lost events, status).
import { describe, it, expect, afterEach } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'node:http';
import type { AgentFacade, EventPacket } from '../../src/control/types.ts';
import { rawEvent, type ReadableEvent } from '../helpers/raw-events.ts';
import type { Flow, FlowEndpoint } from '../../src/observe/flow.ts';
import { buildFlow, type EndpointResolver } from '../../src/observe/hubble/builder.ts';
import { buildFilters, matchFlow, parseSelector, FilterError } from '../../src/observe/hubble/filter.ts';
import { Hubble } from '../../src/observe/hubble/observer.ts';
import { parseDuration, parseFlowsQuery, parseTime } from '../../src/observe/hubble/query.ts';
import { flowsPlugin } from '../../src/api/flows.ts';
import { installErrorHandlers } from '../../src/api/errors.ts';
import { flowsQuery } from '../../src/cli/observe.ts';

const ep = (ID: number, identity: number, pod: string, labels: string[], namespace = 'default'): FlowEndpoint => ({ ID, identity, namespace, labels: [...labels, `k8s:io.kubernetes.pod.namespace=${namespace}`], pod_name: pod });
const IPS: Record<string, FlowEndpoint> = {
  '10.0.0.10': ep(10, 1001, 'xwing', ['k8s:class=xwing', 'k8s:org=alliance']),
  '10.0.0.11': ep(11, 1002, 'tiefighter', ['k8s:class=tiefighter', 'k8s:org=empire']),
  '10.0.0.12': ep(12, 1003, 'deathstar-8c4c77fb7-nnzkt', ['k8s:class=deathstar', 'k8s:org=empire']),
  '10.0.0.13': ep(13, 1004, 'coredns-674b8bbfcf-2sbw2', ['k8s:k8s-app=kube-dns'], 'kube-system'),
};
const resolver: EndpointResolver = { resolve: (ip) => (IPS[ip] ? structuredClone(IPS[ip]) : { identity: 2, labels: ['reserved:world'] }) };
const tcp = (src: string, sport: number, dst: string, dport: number, flags = 2): EventPacket => ({ src, dst, proto: 'TCP', sport, dport, tcpFlags: flags, length: 60 });
const mk = (type: Parameters<typeof rawEvent>[0], extra: ReadableEvent, time = '2025-07-25T17:44:03.815Z') => buildFlow(rawEvent(type, time, extra), resolver, 'n1')!;

const FLOWS: Record<string, Flow> = {
  xwingSyn: mk('trace', { observationPoint: 'to-endpoint', ctState: 'new', packet: tcp('10.0.0.10', 40000, '10.0.0.12', 80) }),
  xwingDrop: mk('drop', { reason: 133, packet: tcp('10.0.0.10', 40001, '10.0.0.12', 80) }),
  xwingDrop8080: mk('drop', { reason: 133, packet: tcp('10.0.0.10', 40002, '10.0.0.12', 8080) }),
  tieSyn: mk('trace', { observationPoint: 'to-endpoint', ctState: 'new', packet: tcp('10.0.0.11', 40003, '10.0.0.12', 80) }),
  synAck: mk('trace', { observationPoint: 'to-stack', ctState: 'reply', packet: tcp('10.0.0.12', 80, '10.0.0.11', 40003, 0x12) }),
  dns: mk('trace', { observationPoint: 'to-endpoint', ctState: 'new', packet: { src: '10.0.0.10', dst: '10.0.0.13', proto: 'UDP', sport: 5353, dport: 53, length: 60 } }),
  world: mk('trace', { observationPoint: 'to-stack', ctState: 'new', packet: tcp('10.0.0.11', 40004, '8.8.8.8', 443) }),
  http: mk('l7', { l7: { type: 'request', verdict: 'Forwarded', method: 'POST', url: 'http://deathstar/v1/request-landing?x=1', protocol: 'HTTP/1.1', client: { ip: '10.0.0.11', port: 40005 }, server: { ip: '10.0.0.12', port: 80 } } }),
  http403: mk('l7', { l7: { type: 'response', verdict: 'Forwarded', method: 'PUT', url: 'http://deathstar/v1/exhaust-port', protocol: 'HTTP/1.1', status: 403, latencyMs: 2, client: { ip: '10.0.0.11', port: 40006 }, server: { ip: '10.0.0.12', port: 80 } } }),
  xlate: mk('trace-sock', { xlatePoint: 'pre-xlate-fwd', packet: tcp('10.0.0.10', 40000, '10.96.0.5', 80) }),
};

/** Names of the flows that pass the flags. */
function pass(...flags: Array<[string, string]>): string[] {
  const filters = buildFilters(flags);
  return Object.entries(FLOWS).filter(([, f]) => matchFlow(f, filters)).map(([k]) => k);
}

describe('filters', () => {
  it('no filter passes everything', () => {
    expect(pass()).toHaveLength(Object.keys(FLOWS).length);
  });

  it('--pod is from OR to, prefix match, namespace default unless given', () => {
    expect(pass(['pod', 'deathstar'])).toEqual(['xwingSyn', 'xwingDrop', 'xwingDrop8080', 'tieSyn', 'synAck', 'http', 'http403']);
    expect(pass(['from-pod', 'deathstar'])).toEqual(['synAck', 'http403']); // the response comes from the server
    expect(pass(['to-pod', 'default/death'])).toEqual(['xwingSyn', 'xwingDrop', 'xwingDrop8080', 'tieSyn', 'http']);
    expect(pass(['to-pod', 'coredns'])).toEqual([]);
    expect(pass(['to-pod', 'kube-system/coredns'])).toEqual(['dns']);
    expect(pass(['namespace', 'kube-system'])).toEqual(['dns']);
    expect(pass(['from-pod', 'xwing'], ['from-pod', 'tiefighter'], ['to-ip', '8.8.8.8'])).toEqual(['world']);
  });

  it('same flag values OR, different flags AND: --from-pod x --to-port 80 --verdict DROPPED', () => {
    expect(pass(['from-pod', 'xwing'], ['to-port', '80'], ['verdict', 'DROPPED'])).toEqual(['xwingDrop']);
    expect(pass(['from-pod', 'xwing'], ['verdict', 'DROPPED'])).toEqual(['xwingDrop', 'xwingDrop8080']);
    expect(pass(['verdict', 'DROPPED'], ['verdict', 'TRACED'])).toEqual(['xwingDrop', 'xwingDrop8080', 'xlate']);
    expect(pass(['to-port', '80'], ['to-port', '53'], ['from-pod', 'xwing'])).toEqual(['xwingSyn', 'xwingDrop', 'dns', 'xlate']);
  });

  it('--not negates only the next filter', () => {
    expect(pass(['from-pod', 'xwing'], ['not', ''], ['verdict', 'DROPPED'])).toEqual(['xwingSyn', 'dns', 'xlate']);
    expect(pass(['not', ''], ['protocol', 'tcp'])).toEqual(['dns']);
    expect(pass(['not', ''], ['protocol', 'tcp'], ['not', ''], ['protocol', 'udp'])).toEqual([]);
    expect(pass(['not', ''], ['pod', 'deathstar'])).toEqual(['dns', 'world', 'xlate']);
    expect(() => buildFilters([['not', ''], ['not', '']])).toThrow('consecutive --not statements');
    expect(() => buildFilters([['verdict', 'DROPPED'], ['not', '']])).toThrow('trailing --not');
  });

  it('--port is source OR destination; --ip takes CIDRs', () => {
    expect(pass(['port', '40003'])).toEqual(['tieSyn', 'synAck']);
    expect(pass(['ip', '8.8.0.0/16'])).toEqual(['world']);
    expect(pass(['from-ip', '10.0.0.12'])).toEqual(['synAck', 'http403']);
    expect(pass(['to-ip', '10.96.0.0/12'])).toEqual(['xlate']);
  });

  it('labels: selectors with or without a source', () => {
    expect(pass(['from-label', 'org=alliance'], ['to-label', 'k8s:class=deathstar'])).toEqual(['xwingSyn', 'xwingDrop', 'xwingDrop8080']);
    expect(pass(['to-label', 'reserved:world'])).toEqual(['world', 'xlate']);
    expect(pass(['from-label', 'class in (tiefighter, deathstar)'], ['to-label', 'org!=empire'])).toEqual(['world']);
    expect(pass(['label', 'k8s-app'])).toEqual(['dns']);
    expect(parseSelector('a=b,c in (d,e),!f')).toEqual([{ key: 'a', op: '=', values: ['b'] }, { key: 'c', op: 'in', values: ['d', 'e'] }, { key: 'f', op: '!exists', values: [] }]);
  });

  it('identities by number or reserved name', () => {
    expect(pass(['from-identity', '1001'])).toEqual(['xwingSyn', 'xwingDrop', 'xwingDrop8080', 'dns', 'xlate']);
    expect(pass(['to-identity', 'world'])).toEqual(['world', 'xlate']);
    expect(pass(['identity', '1004'])).toEqual(['dns']);
    expect(() => buildFilters([['identity', 'nope']])).toThrow(FilterError);
  });

  it('--type with sub-types; --protocol', () => {
    expect(pass(['type', 'drop'])).toEqual(['xwingDrop', 'xwingDrop8080']);
    expect(pass(['type', 'trace:to-stack'])).toEqual(['synAck', 'world']);
    expect(pass(['type', 'trace-sock'], ['type', 'l7'])).toEqual(['http', 'http403', 'xlate']);
    expect(pass(['type', 'drop:133'])).toEqual(['xwingDrop', 'xwingDrop8080']);
    expect(pass(['protocol', 'udp'])).toEqual(['dns']);
    expect(pass(['protocol', 'http'])).toEqual(['http', 'http403']);
    expect(() => buildFilters([['type', 'bogus']])).toThrow(/unable to parse type/);
    expect(() => buildFilters([['protocol', 'sctpx']])).toThrow(/unknown protocol/);
  });

  it('HTTP method, path (regex on the path), status (exact or N+)', () => {
    expect(pass(['http-method', 'post'])).toEqual(['http']);
    expect(pass(['http-path', '^/v1/request'])).toEqual(['http']);
    expect(pass(['http-status', '4+'])).toEqual(['http403']);
    expect(pass(['http-status', '200'])).toEqual([]);
    expect(() => buildFilters([['http-status', '6xx']])).toThrow(/invalid status code/);
  });

  it('conflicting flags are refused as hubble refuses them', () => {
    expect(() => buildFilters([['pod', 'a'], ['from-pod', 'b']])).toThrow('filters --from-pod and --pod cannot be combined');
    expect(() => buildFilters([['port', '1'], ['to-port', '2']])).toThrow(/cannot be combined/);
    expect(() => buildFilters([['verdict', 'NOPE']])).toThrow('invalid --verdict value: NOPE');
  });

  it('reply, traffic direction, tcp flags', () => {
    expect(pass(['tcp-flags', 'SYN,ACK'])).toEqual(['synAck']);
    expect(pass(['reply', 'true'])).toEqual(['synAck', 'http403']);
  });

  it('one engine with the exporter: its fields work in an --allowlist, bad values fail before any flow', () => {
    const q = parseFlowsQuery('allowlist=' + encodeURIComponent('{"destination_pod":["kube-system/"],"protocol":["udp"]}'));
    expect(Object.entries(FLOWS).filter(([, f]) => matchFlow(f, q.filters)).map(([k]) => k)).toEqual(['dns']);
    expect(() => buildFilters([['to-ip', '10.0.0.0/33']])).toThrow('flow filter: destination_ip: invalid CIDR 10.0.0.0/33');
    expect(() => parseFlowsQuery('allowlist=' + encodeURIComponent('{"colour":["blue"]}'))).toThrow(FilterError);
  });
});

describe('query parameters and times', () => {
  it('durations and RFC 3339', () => {
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseTime('5m', 1_000_000)).toBe(700_000);
    expect(parseTime('2025-07-25T17:44:03Z')).toBe(Date.UTC(2025, 6, 25, 17, 44, 3));
    expect(() => parseTime('yesterday')).toThrow(FilterError);
  });

  it('parses ordered filter flags and selectors', () => {
    const q = parseFlowsQuery('from-pod=xwing&not=&verdict=DROPPED&last=5&follow=true&since=2025-07-25T17:00:00Z');
    expect(q.filters.whitelist).toEqual([{ source_pod: ['xwing'] }]);
    expect(q.filters.blacklist).toEqual([{ verdict: ['DROPPED'] }]);
    expect([q.number, q.first, q.follow, q.since]).toEqual([5, false, true, Date.UTC(2025, 6, 25, 17)]);
    expect(parseFlowsQuery('first=3')).toMatchObject({ number: 3, first: true });
    expect(() => parseFlowsQuery('bogus=1')).toThrow('unknown flows parameter "bogus"');
    expect(parseFlowsQuery('allowlist=' + encodeURIComponent('{"destination_port":["53"]}')).filters.whitelist).toEqual([{ destination_port: ['53'] }]);
  });

  it('the CLI asks for the last 20 by default, none with -f or --since', () => {
    const q = (filters: Array<[string, string]>, select: Record<string, string> = {}, bools: string[] = []) => flowsQuery({ filters, select, bools: new Set(bools) }, Date.UTC(2025, 0, 1)).toString();
    expect(q([['from-pod', 'x'], ['to-port', '80'], ['verdict', 'DROPPED']])).toBe('from-pod=x&to-port=80&verdict=DROPPED&last=20');
    expect(q([], {}, ['follow'])).toBe('follow=true');
    expect(q([], { last: '3' }, ['follow'])).toBe('last=3&follow=true');
    expect(q([], { since: '1m' })).toBe('since=2024-12-31T23%3A59%3A00.000Z');
    expect(q([['not', ''], ['type', 'trace']], { first: '2' })).toBe('not=&type=trace&first=2');
    expect(() => q([], { first: '1', last: '1' })).toThrow('cannot set both --first and --last');
    expect(() => q([['verdict', 'bad']])).toThrow('invalid --verdict value: bad');
  });
});

describe('/v1/flows and /v1/hubble/status', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function serve(hubble: Hubble | undefined, maxQueuedFlows = 1024): Promise<FastifyInstance> {
    app = Fastify();
    installErrorHandlers(app);
    await app.register(flowsPlugin, { agent: { hubble } as unknown as AgentFacade, maxQueuedFlows });
    return app;
  }
  const trace = (i: number) => rawEvent('trace', new Date(Date.UTC(2025, 6, 25, 17, 0, 0, i)).toISOString(), { observationPoint: 'to-endpoint', ctState: 'new', packet: tcp('10.0.0.10', 1000 + (i % 60000), '10.0.0.12', i % 2 ? 80 : 8080) });

  it('history: NDJSON of {flow, node_name, time}, filtered, last N', async () => {
    const h = new Hubble({ capacity: 100, nodeName: 'n1', resolver });
    for (let i = 0; i < 10; i++) h.ingest(trace(i));
    await serve(h);
    const r = await app!.inject({ url: '/v1/flows?to-port=80&last=2' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('application/x-ndjson');
    const lines = r.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.flow.l4.TCP.source_port)).toEqual([1007, 1009]);
    expect(Object.keys(lines[0])).toEqual(['flow', 'node_name', 'time']);
    const bad = await app!.inject({ url: '/v1/flows?verdict=NOPE' });
    expect([bad.statusCode, bad.json()]).toEqual([400, { error: 'invalid --verdict value: NOPE' }]);
    const st = await app!.inject({ url: '/v1/hubble/status' });
    expect(st.json()).toMatchObject({ currentFlows: 10, maxFlows: 100, seenFlows: 10, connectedNodes: 1, totalNodes: 1 });
  });

  it('disabled hubble answers 503', async () => {
    await serve(undefined);
    expect((await app!.inject({ url: '/v1/hubble/status' })).statusCode).toBe(503);
  });

  it('follow streams new flows; a slow reader loses the oldest and gets {"lost_events": N}', async () => {
    const h = new Hubble({ capacity: 10, nodeName: 'n1', resolver });
    await serve(h, 8);
    await app!.listen({ port: 0, host: '127.0.0.1' });
    const port = (app!.server.address() as { port: number }).port;
    const lines: any[] = [];
    let buf = '';
    const res = await new Promise<import('node:http').IncomingMessage>((resolve) => request({ host: '127.0.0.1', port, path: '/v1/flows?follow=true&to-port=80' }, resolve).end());
    res.setEncoding('utf8');
    res.pause();
    await new Promise((r) => setTimeout(r, 50));
    const N = 20000;
    for (let i = 0; i < N; i++) h.ingest(trace(i)); // the agent never waits: all at once
    res.on('data', (d: string) => {
      buf += d;
      let k;
      while ((k = buf.indexOf('\n')) >= 0) { lines.push(JSON.parse(buf.slice(0, k))); buf = buf.slice(k + 1); }
    });
    res.resume();
    const t0 = Date.now();
    while (Date.now() - t0 < 5000 && !(lines.length && lines[lines.length - 1].flow?.l4.TCP.source_port === 1000 + ((N - 1) % 60000))) await new Promise((r) => setTimeout(r, 20));
    res.destroy();
    const lost = lines.filter((l) => 'lost_events' in l);
    const flows = lines.filter((l) => l.flow);
    expect(lost.length).toBeGreaterThan(0);
    const lostTotal = lost.reduce((a, l) => a + l.lost_events, 0);
    expect(flows.length + lostTotal).toBe(N / 2); // every matching flow either arrived or was counted lost
    expect(flows.every((l) => l.flow.l4.TCP.destination_port === 80)).toBe(true);
    // The newest ones arrive (the oldest were dropped): the last eight are the last eight made.
    expect(flows.slice(-8).map((l) => l.flow.l4.TCP.source_port)).toEqual([...Array(8)].map((_, j) => 1000 + ((N - 15 + 2 * j) % 60000)));
    expect(h.status().seenFlows).toBe(N);
  });
});
