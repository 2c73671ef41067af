// L7 HTTP policy through the in-process proxy, with real traffic: the Star Wars L7 step,
// visibility, path/header rules, keep-alive, a large streamed upload, egress rules, removal.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { poll, requireRoot, run } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
const SERVER = ['node', '-e', `require('http').createServer((q,s)=>{
  if(q.method==='POST'&&q.url==='/v1/request-landing'){q.resume();return s.end('Ship landed\\n')}
  if(q.method==='PUT'&&q.url==='/v1/exhaust-port'){q.resume();return s.end('Panic: deathstar exploded\\n')}
  if(q.url==='/headers'){q.resume();return s.end(JSON.stringify(q.rawHeaders))}
  if(q.url==='/upload'){let n=0;q.on('data',d=>n+=d.length);q.on('end',()=>s.end(String(n)));return}
  q.resume();s.end('remote '+q.socket.remoteAddress+':'+q.socket.remotePort+' '+q.method+' '+q.url+' x-version='+(q.headers['x-version']||'')+'\\n')
}).listen(80,'0.0.0.0')`];

const cnp = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: 'default' }, spec });
const rule1 = (http?: unknown[]) => cnp('rule1', {
  endpointSelector: { matchLabels: { org: 'empire', class: 'deathstar' } },
  ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], ...(http ? { rules: { http } } : {}) }] }],
});

describe.skipIf(!root)('L7 HTTP policy', () => {
  const agent = new TestAgent();
  let vip = '';
  const ips: Record<string, string> = {};
  const inPod = (pod: string, cmd: string[], ms = 20_000, signal?: AbortSignal) => run('ip', ['netns', 'exec', agent.podNetns(pod), ...cmd], ms, signal);
  const policy = async (...objs: unknown[]) => {
    const r = await agent.api('PUT', '/v1/policy', objs);
    if (r.status >= 300) throw new Error(JSON.stringify(r.body));
  };

  const url = (path: string) => `http://deathstar.default.svc.cluster.local${path}`;

  beforeAll(async () => {
    await agent.start();
    for (const [n, l, cmd] of [['deathstar', { org: 'empire', class: 'deathstar' }, SERVER], ['tiefighter', { org: 'empire', class: 'tiefighter' }], ['xwing', { org: 'alliance', class: 'xwing' }]] as const) {
      ips[n] = (await agent.createPod(n, l as Record<string, string>, cmd as string[] | undefined)).podIP;
    }
    const svc = await agent.api('POST', '/v1/services', { name: 'deathstar', namespace: 'default', selector: { org: 'empire', class: 'deathstar' }, ports: [{ port: 80 }] });
    vip = svc.body.service.clusterIP;
    await poll('the deathstar to answer by name', async () => (await inPod('tiefighter', ['curl', '-s', '--max-time', '1', url('/')])).code === 0, 15_000, 100);
  });
  afterAll(() => agent.destroy());

  it('Star Wars L7 step: POST lands, PUT exhaust-port is denied with 403 Access denied', async () => {
    await policy(rule1([{ method: 'POST', path: '/v1/request-landing' }]));
    const land = await inPod('tiefighter', ['curl', '-s', '-XPOST', url('/v1/request-landing')]);
    expect(land.stdout).toBe('Ship landed\n');
    const { result: put } = await agent.expectEvent('?type=l7', 'the denied PUT as an l7 event',
      (e) => /^<- Request http from \d+ \(\[.*k8s:class=tiefighter.*\]\) to \d+ \(\[.*k8s:class=deathstar.*\]\), identity \d+->\d+, verdict Denied PUT http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/exhaust-port => 403$/.test(e.summary),
      () => inPod('tiefighter', ['curl', '-s', '-w', '\n%{http_code} %{content_type}', '-XPUT', url('/v1/exhaust-port')]));
    expect(put!.stdout).toBe('Access denied\r\n\n403 text/plain');
    const { event: drop } = await agent.expectEvent('?type=drop', 'the xwing SYN dropped', (e) => e.reason === 133 && / -> [\d.]+:80 tcp SYN$/.test(e.summary),
      (signal) => inPod('xwing', ['curl', '-s', '--connect-timeout', '5', '-XPOST', url('/v1/request-landing')], 10_000, signal), { stopAction: true });
    expect(drop.summary).toMatch(/^xx drop \(Policy denied\) /);
    const status = (await agent.api('GET', '/v1/status')).body;
    expect(status.features.proxy.redirects).toBeGreaterThan(0);
    const ds = (await agent.api('GET', '/v1/endpoint')).body.find((e: any) => e.ipv4 === ips.deathstar);
    expect((await agent.api('GET', `/v1/bpf/policy/${ds.id}`)).body.table).toMatch(/Allow\s+Ingress\s+k8s:class=tiefighter\s+80\/TCP\s+1\d{4}\s+disabled/);
  });

  it('one keep-alive connection mixes allowed and denied requests', async () => {
    await policy(rule1([{ method: 'POST', path: '/v1/request-landing' }]));
    const js = `const http=require('http');const a=new http.Agent({keepAlive:true,maxSockets:1});const out=[];const ports=new Set();
      const go=(m,p)=>new Promise(r=>{const q=http.request({host:'${vip}',port:80,method:m,path:p,agent:a},s=>{ports.add(q.socket.localPort);let b='';s.on('data',d=>b+=d);s.on('end',()=>{out.push(s.statusCode);r()})});q.end()});
      (async()=>{await go('POST','/v1/request-landing');await go('PUT','/v1/exhaust-port');await go('POST','/v1/request-landing');console.log(out.join(' ')+' '+ports.size);process.exit(0)})()`;
    const r = await inPod('tiefighter', ['node', '-e', js]);
    expect(r.stdout.trim()).toBe('200 403 200 1');
  });

  it('path regex and header rules', async () => {
    await policy(rule1([{ method: 'GET', path: '/public/.*' }, { method: 'GET', path: '/v2', headers: ['X-Version: 2'] }]));
    const ok = await inPod('tiefighter', ['curl', '-s', '-w', ' %{http_code}', `http://${vip}/public/x/y`]);
    expect(ok.stdout).toMatch(/GET \/public\/x\/y x-version=\n 200$/);
    expect((await inPod('tiefighter', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${vip}/private`])).stdout).toBe('403');
    expect((await inPod('tiefighter', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${vip}/v2`])).stdout).toBe('403');
    expect((await inPod('tiefighter', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'X-Version: 2', `http://${vip}/v2`])).stdout).toBe('200');
    // The whole path must match: a prefix is not enough.
    expect((await inPod('tiefighter', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${vip}/xpublic/a`])).stdout).toBe('403');
  });

  it('the server gets the client\'s headers as sent, with the proxy\'s own X-Forwarded-Proto and X-Request-Id in place of the client\'s', async () => {
    await policy(rule1([{}]));
    const r = await inPod('tiefighter', ['curl', '-s', '-H', 'X-Request-Id: mine', '-H', 'x-forwarded-proto: https', '-H', 'X-Dup: a', '-H', 'X-Dup: b', url('/headers')]);
    const raw: string[] = JSON.parse(r.stdout);
    const lines = raw.flatMap((v, i) => (i % 2 ? [] : [`${v.toLowerCase()}: ${raw[i + 1]}`]));
    expect(lines.filter((l) => l.startsWith('x-request-id: '))).toEqual([expect.stringMatching(/^x-request-id: [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)]);
    expect(lines.filter((l) => l.startsWith('x-forwarded-proto: '))).toEqual(['x-forwarded-proto: http']);
    expect(lines.filter((l) => l.startsWith('x-dup: ')).map((l) => l.slice(7)).join(', ')).toBe('a, b');
    expect(lines).toContain('host: deathstar.default.svc.cluster.local');
  });

  it('streams a 1 GiB upload without growing the agent', async () => {
    await policy(rule1([{}]));
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.proc!.pid}/status`, 'utf8'))![1]) / 1024;
    const before = rss();
    const r = await inPod('tiefighter', ['sh', '-c', `head -c 1073741824 /dev/zero | curl -s -T - -H 'content-type: application/octet-stream' http://${vip}/upload`], 120_000);
    expect(r.stdout).toBe(String(1 << 30));
    expect(rss() - before).toBeLessThan(150);
  }, 150_000);

  it('visibility: an egress http {} rule lets everything through and the server sees the client address and port', async () => {
    await agent.api('DELETE', '/v1/policy?all=true');
    await policy(cnp('visibility', {
      endpointSelector: { matchLabels: { class: 'xwing' } },
      egress: [
        { toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] },
        { toEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{}] } }] },
      ],
    }));
    const { result: r } = await agent.expectEvent('?type=l7', 'the forwarded response as an l7 event',
      (e) => /^-> Response http to .* verdict Forwarded GET http:\/\/deathstar\.default\.svc\.cluster\.local\/anything => 200$/.test(e.summary),
      () => inPod('xwing', ['curl', '-s', '-w', 'local %{local_ip}:%{local_port}', url('/anything')]));
    const m = /^remote (\S+) GET \/anything x-version=\nlocal (\S+)$/.exec(r!.stdout);
    expect(m, r!.stdout).not.toBeNull();
    expect(m![1]).toBe(m![2]);
  });

  it('an unreachable upstream gives 503; a malformed request gives 400', async () => {
    await agent.api('DELETE', '/v1/policy?all=true');
    await policy(cnp('egress-l7', { endpointSelector: { matchLabels: { class: 'xwing' } }, egress: [{ toPorts: [{ ports: [{ port: '81', protocol: 'TCP' }], rules: { http: [{}] } }] }] }));
    const r = await inPod('xwing', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${ips.deathstar}:81/`]);
    expect(r.stdout).toBe('503');
    const bad = await inPod('xwing', ['sh', '-c', `printf 'NOT HTTP AT ALL\\r\\n\\r\\n' | nc -w 2 ${ips.deathstar} 81`]);
    expect(bad.stdout).toMatch(/^HTTP\/1\.1 400/);
  });

  it('removing the L7 rule returns the port to plain L4 forwarding', async () => {
    await agent.api('DELETE', '/v1/policy?all=true');
    await policy(rule1());
    const put = await inPod('tiefighter', ['curl', '-s', '-XPUT', url('/v1/exhaust-port')]);
    expect(put.stdout).toBe('Panic: deathstar exploded\n');
    expect((await agent.api('GET', '/v1/status')).body.features.proxy.redirects).toBe(0);
  });
});
