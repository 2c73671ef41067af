// The DNS proxy's pieces without sockets: rule matching as Cilium's matchpattern, the answer details
// it records, the Hubble summary and flow type, the monitor line, the response hooks, the policy entry.
import { describe, expect, it } from 'vitest';
import { compileDnsRules } from '../../src/proxy/dns/rules.ts';
import { answerDetails, buildQuery, buildResponse, TYPE } from '../../src/proxy/dns/wire.ts';
import { encodeName } from '../../src/proxy/dns/names.ts';
import { dnsLayer, dnsSummary } from '../../src/observe/hubble/dns-flow.ts';
import { flowType } from '../../src/observe/hubble/printer.ts';
import { formatEvent } from '../../src/dataplane/event-format.ts';
import { DnsResponseHooks, RESPONSE_MAX_DELAY_MS, type DnsResponseInfo } from '../../src/proxy/dns/hooks.ts';
import type { DnsL7Event } from '../../src/proxy/dns/proxy.ts';
import { EntryBuilder } from '../../src/policy/entries.ts';
import type { Flow } from '../../src/observe/flow.ts';

const base = { transport: 'UDP' as const, client: { ip: '172.20.0.9', port: 50310 }, server: { ip: '172.20.0.51', port: 53 }, endpoint: 7, proxyPort: 10001 };
const request = (query: string, qtype: string, verdict: DnsL7Event['verdict'] = 'Forwarded'): DnsL7Event => ({ ...base, type: 'request', verdict, dns: { query, qtypes: [qtype] } });
const response = (query: string, qtype: string, dns: Partial<DnsL7Event['dns']>): DnsL7Event => ({ ...base, type: 'response', verdict: 'Forwarded', latencyMs: 1, dns: { query, qtypes: [qtype], ...dns } });

describe('rules: dns', () => {
  it('matchName is exact and case-insensitive, with or without the trailing dot', () => {
    const m = compileDnsRules([{ matchName: 'Internal.Example.com.' }]);
    expect(m('internal.example.com')).toBe(true);
    expect(m('x.internal.example.com')).toBe(false);
    expect(m('internal.example.co')).toBe(false);
  });
  it('matchPattern: * stays inside one label; a lone * allows every name', () => {
    const m = compileDnsRules([{ matchPattern: '*.svc.cluster.local' }, { matchPattern: 'api-*.example.com' }]);
    expect(m('webpod.svc.cluster.local')).toBe(true);
    expect(m('webpod.default.svc.cluster.local')).toBe(false);
    expect(m('api-v2.example.com')).toBe(true);
    expect(m('api-v2.example.comx')).toBe(false);
    expect(m('malicious.example.com')).toBe(false);
    expect(compileDnsRules([{ matchPattern: '*' }])('anything.at.all')).toBe(true);
    expect(compileDnsRules([])('a.b')).toBe(false);
  });
  it('matchPattern **. spans one or more labels, as in toFQDNs (one matcher for both)', () => {
    const m = compileDnsRules([{ matchPattern: '**.cilium.io' }]);
    expect(m('docs.cilium.io')).toBe(true);
    expect(m('a.b.cilium.io')).toBe(true);
    expect(m('cilium.io')).toBe(false);
  });
  it('a plain L4 allow on the same port lets every name through (as HTTP gets {})', () => {
    const b = new EntryBuilder();
    const k = { identity: 0, egress: true, protocol: 17, port: 53, portPrefixLen: 16, deny: false, labels: [] };
    b.add({ ...k, dns: [{ matchName: 'a.example' }] });
    b.add({ ...k });
    const [e] = b.finish();
    expect(e).toMatchObject({ proxyPort: 1, dns: [{ matchName: 'a.example' }, { matchPattern: '*' }] });
  });
});

describe('answer details', () => {
  it('addresses, CNAMEs, record types and the lowest TTL; no records gives 2^32-1', () => {
    const q = buildQuery('webpod.default.svc.cluster.local', TYPE.A, { id: 9 });
    const wire = encodeName('webpod.default.svc.cluster.local');
    const r = buildResponse({ id: 9, rd: true, rcode: 0, question: { wire, type: TYPE.A, cls: 1 }, a: ['10.96.166.184', '10.96.0.7'], ttl: 30 });
    expect(answerDetails(r)).toEqual({ rcode: 0, ips: ['10.96.166.184', '10.96.0.7'], cnames: [], rrtypes: [TYPE.A, TYPE.A], ttl: 30 });
    const empty = buildResponse({ id: 9, rd: true, rcode: 0, question: { wire, type: TYPE.AAAA, cls: 1 }, soa: { zone: 'cluster.local', ttl: 5, serial: 1 } });
    expect(answerDetails(empty)).toMatchObject({ ips: [], rrtypes: [], ttl: 4294967295 });
    expect(answerDetails(q)).toBeUndefined(); // a query is not an answer
    expect(answerDetails(new Uint8Array([1, 2, 3]))).toBeUndefined();
  });
});

describe('DNS flows and monitor lines', () => {
  it('summaries exactly as seed 003 prints them', () => {
    expect(dnsSummary(request('webpod.default.svc.cluster.local.', 'A'))).toBe('DNS Query webpod.default.svc.cluster.local. A');
    expect(dnsSummary(response('webpod.default.svc.cluster.local.', 'A', { ips: ['10.96.166.184'], ttl: 30, rcode: 0 })))
      .toBe('DNS Answer "10.96.166.184" TTL: 30 (Proxy webpod.default.svc.cluster.local. A)');
    expect(dnsSummary(response('webpod.default.svc.cluster.local.', 'AAAA', { ips: [], ttl: 4294967295, rcode: 0 })))
      .toBe('DNS Answer  TTL: 4294967295 (Proxy webpod.default.svc.cluster.local. AAAA)');
    expect(dnsSummary(response('nope.default.svc.cluster.local.', 'A', { ips: [], ttl: 4294967295, rcode: 3 })))
      .toBe('DNS Answer RCode: Non-Existent Domain TTL: 4294967295 (Proxy nope.default.svc.cluster.local. A)');
    expect(dnsSummary(response('www.example.', 'A', { ips: ['1.2.3.4'], cnames: ['edge.example.'], ttl: 60, rcode: 0 })))
      .toBe('DNS Answer "1.2.3.4" CNAMEs: "edge.example." TTL: 60 (Proxy www.example. A)');
  });
  it('l7.dns as flow.proto names it, and the flow type carries the observation source', () => {
    const dns = dnsLayer(response('webpod.default.svc.cluster.local.', 'A', { ips: ['10.96.166.184'], ttl: 30, rcode: 0, cnames: [], rrtypes: ['A'] }));
    expect(dns).toEqual({ query: 'webpod.default.svc.cluster.local.', ips: ['10.96.166.184'], ttl: 30, observation_source: 'proxy', qtypes: ['A'], rrtypes: ['A'] });
    expect(flowType({ l7: { type: 'REQUEST', dns } } as Flow)).toBe('dns-request proxy');
    expect(flowType({ l7: { type: 'RESPONSE', dns } } as Flow)).toBe('dns-response proxy');
  });
  it('monitor --type l7: Cilium\'s LogRecordNotify DNS lines', () => {
    const peer = (id: number, identity: number, labels: string[]) => ({ id, identity, labels });
    const client = peer(7, 10292, ['k8s:app=curl']);
    const server = peer(0, 5694, ['k8s:k8s-app=kube-dns']);
    const line = (record: DnsL7Event) => formatEvent({ type: 129, time: 0, record, client, server }).summary;
    expect(line(request('webpod.default.svc.cluster.local.', 'A')))
      .toBe('-> Request dns from 7 ([k8s:app=curl]) to 0 ([k8s:k8s-app=kube-dns]), identity 10292->5694, verdict Forwarded DNS proxy: webpod.default.svc.cluster.local. A');
    expect(line(response('webpod.default.svc.cluster.local.', 'A', { ips: ['10.96.166.184'], ttl: 30, rcode: 0 })))
      .toBe("-> Response dns to 7 ([k8s:app=curl]) from 0 ([k8s:k8s-app=kube-dns]), identity 5694->10292, verdict Forwarded DNS proxy: webpod.default.svc.cluster.local. A TTL: 30 Answer: '10.96.166.184'");
  });
});

describe('onDnsResponse hooks', () => {
  it('every handler sees the answer; one that throws does not stop the others; unregistering stops delivery', () => {
    const hooks = new DnsResponseHooks();
    const seen: DnsResponseInfo[] = [];
    hooks.onDnsResponse(() => { throw new Error('bad handler'); });
    const off = hooks.onDnsResponse((r) => { seen.push(r); });
    const info = { endpointId: 7, sourceIdentity: 10292, name: 'api.example.', qtype: 'A', ips: ['1.2.3.4'], ttl: 60, rcode: 0 };
    void hooks.emit(info);
    off();
    void hooks.emit(info);
    expect(seen).toEqual([info]);
  });
  it('the answer waits for a handler\'s promise, at most RESPONSE_MAX_DELAY_MS', async () => {
    const hooks = new DnsResponseHooks();
    const info = { endpointId: 7, sourceIdentity: 10292, name: 'api.example.', qtype: 'A', ips: ['1.2.3.4'], ttl: 60, rcode: 0 };
    let applied = false;
    hooks.onDnsResponse(async () => { await Promise.resolve(); applied = true; });
    await hooks.emit(info);
    expect(applied).toBe(true);
    const slow = new DnsResponseHooks();
    slow.onDnsResponse(() => new Promise<void>(() => undefined)); // never settles
    const t0 = performance.now();
    await slow.emit(info);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(RESPONSE_MAX_DELAY_MS - 5);
  });
});
