// The HTTP proxy (a worker thread of the agent) under concurrency: 200 keep-alive clients mixing
// allowed and denied requests all get the right answers, every request becomes a request and a
// response flow carrying the X-Request-Id the server saw, and an agent restart leaves no proxy behind.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { poll, requireRoot, run } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
const SERVER = ['node', '-e', `require('http').createServer((q,s)=>{q.resume();s.end(q.url+' '+(q.headers['x-request-id']||'-')+' '+q.socket.remoteAddress)}).listen(80,'0.0.0.0')`];
const CLIENTS = 200;
const ROUNDS = 4;
// argv: host clients rounds → one JSON array of {path, status, body, port}
const CLIENT = `const http=require('http');const [host,n,rounds]=process.argv.slice(1).map((x,i)=>i?Number(x):x);
const agent=new http.Agent({keepAlive:true,maxSockets:n});const out=[];
const go=(path)=>new Promise((done)=>{const q=http.get({host,port:80,path,agent},(r)=>{let b='';r.on('data',(d)=>b+=d);r.on('end',()=>done({path,status:r.statusCode,body:b,port:q.socket.localPort}))});q.on('error',(e)=>done({path,status:0,body:e.message}))});
Promise.all(Array.from({length:n},async(_,i)=>{for(let j=0;j<rounds;j++)out.push(await go('/'+((i+j)%2?'private':'public')+'/'+i+'/'+j))})).then(()=>{console.log(JSON.stringify(out));process.exit(0)})`;

interface Answer { path: string; status: number; body: string; port: number }
interface HttpFlow { type: string; verdict: string; path: string; code?: number; requestId?: string }

describe.skipIf(!root)('L7 proxy under concurrency', () => {
  const agent = new TestAgent(['--hubble-event-buffer-capacity', '65535']);
  const ips: Record<string, string> = {};
  const inPod = (pod: string, cmd: string[], ms = 20_000) => run('ip', ['netns', 'exec', agent.podNetns(pod), ...cmd], ms);
  const policy = {
    apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'public-only', namespace: 'default' },
    spec: {
      endpointSelector: { matchLabels: { app: 'web' } },
      ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/public/.*' }] } }] }],
    },
  };
  const applyPolicy = async () => {
    const r = await agent.api('PUT', '/v1/policy', [policy]);
    if (r.status >= 300) throw new Error(JSON.stringify(r.body));
  };
  const httpFlows = async (): Promise<HttpFlow[]> => {
    const r = await agent.api('GET', '/v1/flows?type=l7&last=65535');
    return String(r.body).split('\n').filter(Boolean).map((l) => JSON.parse(l).flow).filter((f) => f?.l7?.http).map((f) => ({
      type: f.l7.type, verdict: f.verdict, path: new URL(f.l7.http.url).pathname, code: f.l7.http.code,
      requestId: f.l7.http.headers?.find((h: { key: string }) => h.key === 'X-Request-Id')?.value,
    }));
  };
  // The proxy listens on the router IP with a port from 10000-20000 (the Hubble UI's 12000 is on every address).
  const proxyListeners = async () => (await run('ip', ['netns', 'exec', agent.nodeNetns, 'ss', '-Hltn'])).stdout.split('\n')
    .filter((l) => /\s\d+\.\d+\.\d+\.\d+:1\d{4}\s/.test(l));

  beforeAll(async () => {
    await agent.start();
    ips.web = (await agent.createPod('web', { app: 'web' }, SERVER)).podIP;
    ips.client = (await agent.createPod('client', { app: 'client' })).podIP;
    await applyPolicy();
    await poll('the web pod to answer through the proxy', async () => (await inPod('client', ['curl', '-s', '--max-time', '1', `http://${ips.web}/public/ready`])).stdout.startsWith('/public/ready '), 20_000, 100);
  });
  afterAll(() => agent.destroy());

  it('200 parallel keep-alive clients mixing allowed and denied requests all get the right answers, each as two flows', async () => {
    const r = await inPod('client', ['node', '-e', CLIENT, ips.web, String(CLIENTS), String(ROUNDS)], 120_000);
    const answers: Answer[] = JSON.parse(r.stdout);
    expect(answers).toHaveLength(CLIENTS * ROUNDS);
    const seen = new Map<string, string>(); // path → the X-Request-Id the server saw
    for (const a of answers) {
      if (a.path.startsWith('/private/')) {
        expect({ path: a.path, status: a.status, body: a.body }).toEqual({ path: a.path, status: 403, body: 'Access denied\r\n' });
        continue;
      }
      expect(a.status, a.path).toBe(200);
      // The server saw the request id the proxy added and the client's own address.
      const m = new RegExp(`^${a.path} ([0-9a-f-]{36}) (\\S+)$`).exec(a.body);
      expect(m, a.body).not.toBeNull();
      expect(m![2]).toBe(ips.client);
      seen.set(a.path, m![1]);
    }
    // Keep-alive: every connection carried several requests, allowed and denied alike.
    expect(new Set(answers.map((a) => a.port)).size).toBe(CLIENTS);

    const flows = await poll('a request and a response flow for every request', async () => {
      const fs = (await httpFlows()).filter((f) => /^\/(public|private)\/\d+\/\d+$/.test(f.path));
      return fs.length >= 2 * CLIENTS * ROUNDS ? fs : undefined;
    }, 30_000, 200);
    expect(flows).toHaveLength(2 * CLIENTS * ROUNDS);
    for (const a of answers) {
      const mine = flows.filter((f) => f.path === a.path);
      const denied = a.path.startsWith('/private/');
      expect(mine.map((f) => `${f.type} ${f.verdict}`).sort(), a.path).toEqual(denied ? ['REQUEST DROPPED', 'RESPONSE DROPPED'] : ['REQUEST FORWARDED', 'RESPONSE FORWARDED']);
      expect(mine.find((f) => f.type === 'RESPONSE')!.code).toBe(denied ? 403 : 200);
      const ids = new Set(mine.map((f) => f.requestId));
      expect(ids.size, a.path).toBe(1);
      if (!denied) expect([...ids][0]).toBe(seen.get(a.path));
    }
  }, 180_000);

  it('an agent restart leaves no proxy behind and the L7 rules work again', async () => {
    expect(await proxyListeners()).toHaveLength(1);
    await agent.kill('SIGTERM');
    expect(agent.proc!.exitCode).toBe(0); // a clean exit: the proxy worker did not hold the agent up
    expect(await proxyListeners()).toEqual([]);
    await agent.start();
    await applyPolicy();
    expect(await proxyListeners()).toHaveLength(1);
    const ok = await poll('the proxy to answer again', async () => {
      const out = await inPod('client', ['curl', '-s', '--max-time', '2', '-w', ' %{http_code}', `http://${ips.web}/public/again`]);
      return out.stdout.endsWith(' 200') ? out.stdout : undefined;
    }, 20_000, 200);
    expect(ok).toMatch(new RegExp(`^/public/again [0-9a-f-]{36} ${ips.client.replace(/\./g, '\\.')} 200$`));
    expect((await inPod('client', ['curl', '-s', '-w', ' %{http_code}', `http://${ips.web}/private/again`])).stdout).toBe('Access denied\r\n 403');
    expect(agent.log()).not.toMatch(/HTTP proxy worker (failed|exited)/);
  }, 60_000);
});
