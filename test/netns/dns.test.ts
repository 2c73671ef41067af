// Cluster DNS as the seeds have it, with real lookups: two kube-system/coredns pods behind kube-dns,
// a label-based DNS egress policy, the DNS proxy (`rules: dns`) with REFUSED answers, the seed-003
// l7-visibility policy's exact flow lines, and the server seeing the asking pod's own address.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { poll, requireRoot, run } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
const CLI = join(import.meta.dirname, '..', '..', 'bin', 'ciliary');
const WEB = ['node', '-e', `require('http').createServer((q,s)=>s.end('Hostname: webpod\\nRemoteAddr: '+q.socket.remoteAddress+':'+q.socket.remotePort+'\\n')).listen(80,'0.0.0.0')`];
const TIME = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}: /;
const COREDNS_POD = /^coredns-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/;
const KUBE_DNS_PEER = { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' } };

const cnp = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: 'default' }, spec });
const toWeb = { toEndpoints: [{ matchLabels: { app: 'webpod' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] };
/** Seed 003's policy, as written (S3 l.2758–2786). */
const L7_VISIBILITY = cnp('l7-visibility', {
  endpointSelector: { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'default' } },
  egress: [
    { toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] },
    { toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'default' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }, { port: '8080', protocol: 'TCP' }], rules: { http: [{}] } }] },
  ],
});

describe.skipIf(!root)('cluster DNS: CoreDNS pods and the DNS proxy', () => {
  const agent = new TestAgent(['--hubble-metrics=dns']);
  let webIP = '';
  let clientIP = '';
  let clientId = 0;
  let vip = '';
  const inPod = (pod: string, cmd: string[], ms = 20_000) => run('ip', ['netns', 'exec', agent.podNetns(pod), ...cmd], ms);
  const dig = (...args: string[]) => inPod('curl-pod', ['dig', '+tries=1', '+timeout=2', ...args]);
  const policy = async (...objs: unknown[]) => {
    await agent.api('DELETE', '/v1/policy?all=true');
    if (objs.length === 0) return;
    const r = await agent.api('PUT', '/v1/policy', objs);
    if (r.status >= 300) throw new Error(JSON.stringify(r.body));
  };
  const cli = async (...args: string[]) => {
    const r = await run(CLI, ['--socket', agent.socket, ...args], 30_000);
    if (r.code !== 0) throw new Error(`ciliary ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    return r.stdout;
  };
  const corednsPods = async () => ((await agent.api('GET', '/v1/pods')).body as any[]).filter((p) => p.namespace === 'kube-system' && COREDNS_POD.test(p.name));

  beforeAll(async () => {
    await agent.start();
    webIP = (await agent.createPod('webpod', { app: 'webpod' }, WEB)).podIP;
    const client = await agent.createPod('curl-pod', { app: 'curl' });
    clientIP = client.podIP;
    clientId = client.endpointID;
    vip = (await agent.api('POST', '/v1/services', { name: 'webpod', namespace: 'default', selector: { app: 'webpod' }, ports: [{ port: 80 }] })).body.service.clusterIP;
    await poll('CoreDNS to answer for webpod', async () => (await dig('+short', 'webpod.default.svc.cluster.local')).stdout.trim() === vip, 30_000, 200);
  });
  afterAll(() => agent.destroy());

  it('kube-system/coredns: two pods with k8s-app=kube-dns, one identity, the backends of kube-dns', async () => {
    const pods = await corednsPods();
    expect(pods).toHaveLength(2);
    const eps = (await agent.api('GET', '/v1/endpoint')).body as any[];
    const dnsEps = eps.filter((e) => pods.some((p) => p.podIP === e.ipv4));
    expect(dnsEps).toHaveLength(2);
    expect(dnsEps[0].identity).toBe(dnsEps[1].identity);
    expect(dnsEps[0].labels).toEqual(expect.arrayContaining(['k8s:io.cilium.k8s.policy.serviceaccount=coredns', 'k8s:io.kubernetes.pod.namespace=kube-system', 'k8s:k8s-app=kube-dns']));
    const ids = (await agent.api('GET', '/v1/identity')).body as any[];
    expect(ids.find((i) => i.id === dnsEps[0].identity)?.labels).toEqual(expect.arrayContaining(['k8s:k8s-app=kube-dns']));
    const svc = (await agent.api('GET', '/v1/services/kube-system/kube-dns')).body;
    expect(svc.clusterIP).toBe('10.96.0.10');
    for (const f of svc.frontends) expect(f.backends.map((b: any) => b.ip).sort()).toEqual(pods.map((p) => p.podIP).sort());
  });

  it('answers services, pod names, search domains over UDP and TCP, and NXDOMAIN', async () => {
    expect((await dig('+short', 'webpod.default.svc.cluster.local')).stdout.trim()).toBe(vip);
    expect((await dig('+tcp', '+short', 'webpod.default.svc.cluster.local')).stdout.trim()).toBe(vip);
    expect((await dig('+short', `${webIP.replaceAll('.', '-')}.default.pod.cluster.local`)).stdout.trim()).toBe(webIP);
    const ns = await inPod('curl-pod', ['nslookup', 'webpod']);
    expect(ns.stdout).toMatch(/Server:\s+10\.96\.0\.10/);
    expect(ns.stdout).toMatch(new RegExp(`Name:\\s+webpod\\.default\\.svc\\.cluster\\.local\\nAddress: ${vip.replaceAll('.', '\\.')}`));
    expect((await dig('nope.default.svc.cluster.local')).stdout).toMatch(/status: NXDOMAIN/);
    expect((await inPod('curl-pod', ['curl', '-s', '--max-time', '5', 'http://webpod/'])).stdout).toMatch(/^Hostname: webpod/);
  });

  it('a label-based policy to kube-dns on 53 allows DNS; without it DNS is Policy denied', async () => {
    await policy(cnp('dns-allow', {
      endpointSelector: { matchLabels: { app: 'curl' } },
      egress: [{ toEndpoints: [KUBE_DNS_PEER], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }, { port: '53', protocol: 'TCP' }] }] }, toWeb],
    }));
    expect((await dig('+short', 'webpod.default.svc.cluster.local')).stdout.trim()).toBe(vip);
    expect((await inPod('curl-pod', ['curl', '-s', '--max-time', '5', 'http://webpod/'])).stdout).toMatch(/^Hostname: webpod/);
    await policy(cnp('web-only', { endpointSelector: { matchLabels: { app: 'curl' } }, egress: [toWeb] }));
    const { event, result } = await agent.expectEvent('?type=drop', 'the DNS query dropped', (e) => e.reason === 133 && / -> [\d.]+:53 udp$/.test(e.summary),
      () => dig('webpod.default.svc.cluster.local'));
    expect(event.summary).toMatch(/^xx drop \(Policy denied\) /);
    expect(result!.stdout).toMatch(/timed out|no servers could be reached/);
  });

  it('rules: dns matchName: the allowed name resolves, another name is REFUSED; monitor and JSON show both', async () => {
    await policy(cnp('dns-names', {
      endpointSelector: { matchLabels: { app: 'curl' } },
      egress: [{ toEndpoints: [KUBE_DNS_PEER], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchName: 'webpod.default.svc.cluster.local' }] } }] }, toWeb],
    }));
    const { event } = await agent.expectEvent('?type=l7', 'the DNS response as an l7 event',
      (e) => e.summary.includes(`Response dns to ${clientId} `) && e.summary.includes('DNS proxy: webpod.default.svc.cluster.local. A'),
      async () => expect((await dig('+short', 'webpod.default.svc.cluster.local')).stdout.trim()).toBe(vip));
    expect(event.summary).toMatch(new RegExp(`verdict Forwarded DNS proxy: webpod\\.default\\.svc\\.cluster\\.local\\. A TTL: 30 Answer: '${vip.replaceAll('.', '\\.')}'$`));
    const refused = await dig('other.default.svc.cluster.local');
    expect(refused.stdout).toMatch(/status: REFUSED/);
    expect((await dig('+tcp', 'other.default.svc.cluster.local')).stdout).toMatch(/status: REFUSED/);
    const json = (await cli('observe', '--protocol', 'dns', '--last', '50', '-o', 'json')).trim().split('\n').map((l) => JSON.parse(l).flow);
    const denied = json.find((f) => f.verdict === 'DROPPED' && f.l7.dns.query === 'other.default.svc.cluster.local.');
    expect(denied).toMatchObject({ Type: 'L7', l7: { type: 'REQUEST', dns: { query: 'other.default.svc.cluster.local.', observation_source: 'proxy', qtypes: ['A'] } } });
    const answer = json.find((f) => f.l7.type === 'RESPONSE' && f.l7.dns.qtypes[0] === 'A' && f.l7.dns.query === 'webpod.default.svc.cluster.local.');
    expect(answer.l7.dns).toEqual({ query: 'webpod.default.svc.cluster.local.', ips: [vip], ttl: 30, observation_source: 'proxy', qtypes: ['A'], rrtypes: ['A'] });
    expect(answer).toMatchObject({ is_reply: true, source: { namespace: 'kube-system' }, destination: { pod_name: 'curl-pod' }, l4: { UDP: { destination_port: expect.any(Number), source_port: 53 } } });
  });

  it('the seed-003 l7-visibility policy: exact DNS and HTTP flow lines, the rest denied, servers see the pod', async () => {
    await policy(L7_VISIBILITY);
    const page = await inPod('curl-pod', ['curl', '-s', '--max-time', '5', 'webpod']);
    expect(page.stdout).toMatch(new RegExp(`^Hostname: webpod\\nRemoteAddr: ${clientIP.replaceAll('.', '\\.')}:\\d+\\n`));
    let lines: string[] = [];
    const want = [
      /^default\/curl-pod:\d+ \(ID:\d+\) -> kube-system\/coredns-\w+-\w+:53 \(ID:\d+\) dns-request proxy FORWARDED \(DNS Query webpod\.default\.svc\.cluster\.local\. A\)$/,
      /^default\/curl-pod:\d+ \(ID:\d+\) -> kube-system\/coredns-\w+-\w+:53 \(ID:\d+\) dns-request proxy FORWARDED \(DNS Query webpod\.default\.svc\.cluster\.local\. AAAA\)$/,
      new RegExp(`^default/curl-pod:\\d+ \\(ID:\\d+\\) <- kube-system/coredns-\\w+-\\w+:53 \\(ID:\\d+\\) dns-response proxy FORWARDED \\(DNS Answer "${vip.replaceAll('.', '\\.')}" TTL: 30 \\(Proxy webpod\\.default\\.svc\\.cluster\\.local\\. A\\)\\)$`),
      /^default\/curl-pod:\d+ \(ID:\d+\) <- kube-system\/coredns-\w+-\w+:53 \(ID:\d+\) dns-response proxy FORWARDED \(DNS Answer {2}TTL: 4294967295 \(Proxy webpod\.default\.svc\.cluster\.local\. AAAA\)\)$/,
      /^default\/curl-pod:\d+ \(ID:\d+\) -> default\/webpod:80 \(ID:\d+\) http-request FORWARDED \(HTTP\/1\.1 GET http:\/\/webpod\/\)$/,
      /^default\/curl-pod:\d+ \(ID:\d+\) <- default\/webpod:80 \(ID:\d+\) http-response FORWARDED \(HTTP\/1\.1 200 \d+ms \(GET http:\/\/webpod\/\)\)$/,
    ];
    await poll('the DNS and HTTP flows', async () => {
      lines = (await cli('observe', '--type', 'l7', '--last', '30', '-o', 'compact')).split('\n').filter(Boolean)
        .map((l) => { expect(l).toMatch(TIME); return l.replace(TIME, ''); });
      return want.every((re) => lines.some((l) => re.test(l)));
    }, 10_000, 200).catch((e: Error) => { throw new Error(`${e.message}; got:\n${lines.join('\n')}`); });
    // Everything else from the selected pods is denied: the CoreDNS pods' metrics port.
    const pods = await corednsPods();
    const other = await inPod('curl-pod', ['curl', '-s', '--connect-timeout', '2', `http://${pods[0].podIP}:9153/metrics`]);
    expect(other.code).toBe(28);
    // The CoreDNS pod logged the queries with the asking pod's own address.
    const logs = pods.map((p) => readFileSync(join(agent.stateDir, 'pods', `kube-system_${p.name}.log`), 'utf8')).join('');
    expect(logs).toMatch(new RegExp(`\\[INFO\\] ${clientIP.replaceAll('.', '\\.')} - "A IN webpod\\.default\\.svc\\.cluster\\.local\\. udp" NOERROR`));
    expect(logs).not.toMatch(/\[INFO\] 172\.20\.\d+\.1 - /); // never the router (proxy) address
  });

  it('hubble DNS metrics count the proxied queries, responses and response types', async () => {
    await policy(L7_VISIBILITY);
    const scrape = async () => (await run('ip', ['netns', 'exec', agent.nodeNetns, 'curl', '-s', '--max-time', '5', 'http://localhost:9965/metrics'], 10_000)).stdout;
    const count = (text: string, series: string) => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.slice(series.length + 1) ?? 0);
    const queries = 'hubble_dns_queries_total{rcode="",qtypes="A",ips_returned="0"}';
    const responses = `hubble_dns_responses_total{rcode="No Error",qtypes="A",ips_returned="1"}`;
    const types = 'hubble_dns_response_types_total{type="A",qtypes="A"}';
    const before = await scrape();
    expect((await dig('+short', 'webpod.default.svc.cluster.local')).stdout.trim()).toBe(vip);
    let now = '';
    await poll('the DNS metrics to count the lookup', async () => {
      now = await scrape();
      return count(now, queries) === count(before, queries) + 1 && count(now, responses) === count(before, responses) + 1 && count(now, types) === count(before, types) + 1;
    }, 10_000, 200).catch((e: Error) => { throw new Error(`${e.message}; got:\n${now.split('\n').filter((l) => l.startsWith('hubble_dns')).join('\n')}`); });
  });
});
