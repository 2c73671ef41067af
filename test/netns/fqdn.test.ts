// toFQDNs with real lookups: an internet host on the node (two addresses, one per name) and a zone
// we control on a world DNS server. The pod's queries go through the DNS proxy (a `rules: dns`
// rule), which teaches toFQDNs: curl by the allowed name works, the same host by the other name or
// on another port does not, and when the answer's TTL runs out the allow goes.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestAgent } from '../helpers/agent.ts';
import { nsSpawn, requireRoot, run, sh, stop, waitListening } from '../helpers/sys.ts';

const root = requireRoot();
const DNS_IP = '198.51.100.53';
const ALLOWED_IP = '198.51.100.7';
const OTHER_IP = '198.51.100.8';
const TTL = 3;
/** The zone: two names of one host, answered with a short TTL; AAAA gets an empty answer, other names NXDOMAIN. */
const DNS_SERVER = `const d = require('dgram').createSocket('udp4');
const zone = { 'allowed.fqdn.test': '${ALLOWED_IP}', 'other.fqdn.test': '${OTHER_IP}' };
d.on('message', (q, r) => {
  let o = 12; const l = [];
  while (q[o]) { l.push(q.toString('latin1', o + 1, o + 1 + q[o])); o += q[o] + 1; }
  o += 5;
  const ip = zone[l.join('.').toLowerCase()];
  const a = ip && q.readUInt16BE(o - 4) === 1;
  const h = Buffer.from(q.subarray(0, o));
  h.writeUInt16BE(ip ? 0x8580 : 0x8583, 2); h.writeUInt16BE(a ? 1 : 0, 6); h.writeUInt32BE(0, 8);
  const ans = Buffer.alloc(a ? 16 : 0);
  if (a) { ans.writeUInt16BE(0xc00c, 0); ans.writeUInt16BE(1, 2); ans.writeUInt16BE(1, 4); ans.writeUInt32BE(${TTL}, 6); ans.writeUInt16BE(4, 10); ip.split('.').forEach((b, i) => (ans[12 + i] = Number(b))); }
  d.send(Buffer.concat([h, ans]), r.port, r.address);
});
d.bind(53, '${DNS_IP}');`;
const WEB_SERVER = "for (const p of [80, 8080]) require('http').createServer((q,s)=>s.end('host '+q.headers.host+' '+p+'\\n')).listen(p,'0.0.0.0')";

const policy = {
  apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'to-fqdns', namespace: 'default' },
  spec: {
    endpointSelector: { matchLabels: { app: 'client' } },
    egress: [
      { toCIDR: [`${DNS_IP}/32`], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] },
      { toFQDNs: [{ matchName: 'allowed.fqdn.test' }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] },
    ],
  },
};

describe.skipIf(!root)('toFQDNs', () => {
  const agent = new TestAgent();
  const servers: ChildProcess[] = [];
  const client = () => agent.podNetns('client');
  beforeAll(async () => {
    await agent.start();
    for (const ip of [DNS_IP, ALLOWED_IP, OTHER_IP]) sh('ip', ['-n', agent.nodeNetns, 'addr', 'add', `${ip}/32`, 'dev', 'lo']);
    servers.push(nsSpawn(agent.nodeNetns, ['node', '-e', DNS_SERVER]), nsSpawn(agent.nodeNetns, ['node', '-e', WEB_SERVER]));
    await agent.createPod('client', { app: 'client' });
    await waitListening(agent.nodeNetns, 53, 'udp');
    await waitListening(agent.nodeNetns, 8080);
    const r = await agent.api('PUT', '/v1/policy', [policy]);
    if (r.status !== 200) throw new Error(`policy: ${r.status} ${JSON.stringify(r.body)}`);
  });
  afterAll(async () => {
    for (const s of servers) await stop(s);
    await agent.destroy();
  });

  const dig = async (name: string) => (await run('ip', ['netns', 'exec', client(), 'dig', '+short', '+tries=1', '+time=2', `@${DNS_IP}`, name], 10_000)).stdout.trim();
  /** curl by name, resolved to `ip` as the lookup answered (curl itself asks the pod's cluster DNS). */
  const curl = (name: string, ip: string, port: number, signal?: AbortSignal) =>
    run('ip', ['netns', 'exec', client(), 'curl', '-s', '--connect-timeout', '2', '--max-time', '3', '--resolve', `${name}:${port}:${ip}`, `http://${name}:${port}/`], 10_000, signal);
  const denied = async (name: string, ip: string, port: number) => {
    const tuple = `-> ${ip}:${port} tcp SYN`;
    const { result } = await agent.expectEvent('?type=drop', `a policy drop of ${tuple}`,
      (e) => /^xx drop \(Policy denied\) /.test(e.summary) && e.summary.endsWith(tuple),
      (signal) => curl(name, ip, port, signal), { stopAction: true });
    expect(result?.stdout ?? '').toBe('');
  };
  const cache = async () => (await agent.api('GET', '/v1/fqdn/cache')).body as Array<{ fqdn: string; ips: string[]; ttl: number }>;
  const ipcache = async () => (await agent.api('GET', '/v1/ip')).body as Array<{ prefix: string; labels: string[] }>;

  it('the allowed name works on its port; the other name and the other port do not', async () => {
    expect(await dig('other.fqdn.test')).toBe(OTHER_IP);
    await denied('other.fqdn.test', OTHER_IP, 80);
    expect(await dig('allowed.fqdn.test')).toBe(ALLOWED_IP);
    expect((await curl('allowed.fqdn.test', ALLOWED_IP, 80)).stdout).toBe('host allowed.fqdn.test 80\n');
    await denied('allowed.fqdn.test', ALLOWED_IP, 8080);
    expect((await cache()).map((r) => [r.fqdn, r.ips, r.ttl])).toEqual(expect.arrayContaining([['allowed.fqdn.test.', [ALLOWED_IP], TTL]]));
    expect((await ipcache()).find((e) => e.prefix === `${ALLOWED_IP}/32`)?.labels).toContain('fqdn:allowed.fqdn.test.');
    expect((await ipcache()).some((e) => e.prefix === `${OTHER_IP}/32`)).toBe(false);
  });

  it('when the TTL runs out the allow goes; a new lookup brings it back', async () => {
    expect(await dig('allowed.fqdn.test')).toBe(ALLOWED_IP);
    expect((await curl('allowed.fqdn.test', ALLOWED_IP, 80)).stdout).toBe('host allowed.fqdn.test 80\n');
    const deadline = Date.now() + (TTL + 5) * 1000;
    while ((await ipcache()).some((e) => e.prefix === `${ALLOWED_IP}/32`)) {
      if (Date.now() > deadline) throw new Error('the learned IP did not expire');
      await new Promise((r) => setTimeout(r, 200));
    }
    await denied('allowed.fqdn.test', ALLOWED_IP, 80);
    expect(await dig('allowed.fqdn.test')).toBe(ALLOWED_IP);
    expect((await curl('allowed.fqdn.test', ALLOWED_IP, 80)).stdout).toBe('host allowed.fqdn.test 80\n');
  });
});
