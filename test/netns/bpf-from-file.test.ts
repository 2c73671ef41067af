// `ciliary bpf … --from-file` against a real agent's pinned maps after it stopped: decoded entries
// (addresses, identities, service frontend → backend, policy labels), the same text the API gave.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { requireRoot, run, sleep } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';
import { main } from '../../src/cli/main.ts';

const root = requireRoot();
const server = ['node', '-e', `require('http').createServer((q,s)=>s.end('web\\n')).listen(80,'0.0.0.0')`];
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The bpf commands the test compares, each through the API first and then from the files. */
const COMMANDS = [
  ['bpf', 'ct', 'list', 'global'],
  ['bpf', 'lb', 'list'],
  ['bpf', 'lb', 'list', '--revnat'],
  ['bpf', 'policy', 'get', '--all'],
  ['bpf', 'ipcache', 'list'],
  ['bpf', 'endpoint', 'list'],
  ['bpf', 'metrics', 'list'],
];

describe.skipIf(!root)('bpf lists from the pinned files of a stopped agent', () => {
  let agent: TestAgent;
  let web: any;
  let client: any;
  let svcIP = '';
  let revNat = 0;
  let ids: Record<string, number> = {};
  const viaApi = new Map<string, string>();
  const fromFile = new Map<string, { code: number; out: string; err: string }>();
  let refusedFlush: { code: number; out: string; err: string };

  const cli = async (...argv: string[]) => {
    let out = '';
    let err = '';
    const code = await main(['--socket', agent.socket, '--state-dir', agent.stateDir, ...argv], { out: (s) => (out += s), err: (s) => (err += s) }, {});
    return { code, out, err };
  };

  beforeAll(async () => {
    agent = new TestAgent();
    await agent.start();
    web = await agent.createPod('web', { app: 'web' }, server);
    client = await agent.createPod('client', { app: 'client' });
    const svc = await agent.api('POST', '/v1/services', { namespace: 'default', name: 'web', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 80 }] });
    expect(svc.status).toBeLessThan(300);
    svcIP = svc.body.service.clusterIP;
    const policy = await agent.api('PUT', '/v1/policy', [{
      apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'web', namespace: 'default' },
      spec: { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
    }]);
    expect(policy.status).toBeLessThan(300);
    // One connection: the server may still be starting, so retry until it answers.
    let answered = false;
    for (let i = 0; i < 50 && !answered; i++) {
      const r = await run('ip', ['netns', 'exec', agent.podNetns('client'), 'curl', '-s', '--max-time', '1', `http://${svcIP}/`]);
      answered = r.code === 0 && r.stdout === 'web\n';
    }
    expect(answered).toBe(true);
    const eps = (await agent.api('GET', '/v1/endpoint')).body as Array<{ ipv4: string; identity: number }>;
    ids = Object.fromEntries(eps.map((e) => [e.ipv4, e.identity]));
    revNat = Number(/\((\d+)\)/.exec((await agent.api('GET', '/v1/lb?revnat=false')).body.rows.find((r: string[]) => r[0] === `${svcIP}:80`)[1])![1]);
    // The connection's last FIN/ACK may still be on its way: take the API's text once it stops changing.
    for (let i = 0, before = ''; i < 50; i++, await sleep(100)) {
      for (const c of COMMANDS) viaApi.set(c.join(' '), (await cli(...c)).out);
      const now = [...viaApi.values()].join('\0');
      if (now === before) break;
      before = now;
    }
    refusedFlush = await cli('bpf', 'ct', 'flush', 'global', '--from-file');
    await agent.kill('SIGTERM');
    for (const c of COMMANDS) fromFile.set(c.join(' '), await cli(...c, '--from-file'));
  }, 120_000);
  afterAll(async () => {
    await agent?.destroy();
  });

  const file = (cmd: string) => {
    const r = fromFile.get(cmd)!;
    expect(r, cmd).toMatchObject({ code: 0, err: '' });
    return r.out;
  };

  it('prints what the API printed while the agent ran', () => {
    for (const c of COMMANDS) expect(file(c.join(' ')), c.join(' ')).toBe(viaApi.get(c.join(' ')));
  });

  it('bpf ct list global: the service entry and the client → backend entry, with the client identity', () => {
    const out = file('bpf ct list global');
    expect(out).toMatch(new RegExp(`^TCP OUT ${esc(svcIP)}:80 -> ${esc(client.podIP)}:\\d+ service expires=\\d+ .* RevNAT=${revNat} `, 'm'));
    expect(out).toMatch(new RegExp(`^TCP (IN|OUT) [^\\n]*${esc(web.podIP)}:80[^\\n]* Flags=0x\\w{4} \\[ [^\\n]*SourceSecurityID=(0|${ids[client.podIP]}) `, 'm'));
    expect(out).not.toMatch(/\b[0-9a-f]{2} [0-9a-f]{2} [0-9a-f]{2}\b/);
  });

  it('bpf lb list: the frontend, then its backend; --revnat: the id → frontend', () => {
    const lines = file('bpf lb list').trimEnd().split('\n');
    const at = lines.findIndex((l) => l.startsWith(`${svcIP}:80 `));
    expect(lines[at]).toMatch(new RegExp(`^${esc(svcIP)}:80\\s+0\\.0\\.0\\.0:0 \\(${revNat}\\) \\[ClusterIP, non-routable\\]$`));
    expect(lines[at + 1]).toMatch(new RegExp(`^\\s+${esc(web.podIP)}:80 \\(${revNat}\\)$`));
    expect(file('bpf lb list --revnat')).toMatch(new RegExp(`^${revNat}\\s+${esc(svcIP)}:80$`, 'm'));
  });

  it('bpf policy get --all: the web endpoint allows the client\'s labels on 80/TCP, with its counters', () => {
    const out = file('bpf policy get --all');
    const block = out.split('\n\n').find((b) => b.startsWith(`Endpoint ID: ${web.endpointID}\n`));
    expect(block).toMatch(/Allow\s+Ingress\s+k8s:app=client\s+80\/TCP\s+NONE\s+disabled\s+[1-9]\d*\s+[1-9]\d*\s+24/);
    expect(block).toMatch(/^\s+k8s:io\.kubernetes\.pod\.namespace=default$/m);
  });

  it('map get decodes every map the agent pinned', async () => {
    const names = (await cli('map', 'list', '--from-file')).out.trimEnd().split('\n').slice(1).map((l) => l.split(/\s+/)[0]);
    expect(names).toEqual(expect.arrayContaining(['cilium_lxc', 'cilium_ct4_global', 'cilium_lb4_maglev', `cilium_policy_${web.endpointID}`, 'cilium_proxy4_upstream']));
    for (const name of names) {
      const r = await cli('map', 'get', name, '--from-file', '-o', 'json');
      expect(r.code, name).toBe(0);
      for (const e of JSON.parse(r.out)) expect(e.decoded, `${name} ${e.key}`).toBeDefined();
    }
  });

  it('bpf ipcache and endpoint lists: pod addresses with their identity numbers and endpoint ids', () => {
    expect(file('bpf ipcache list')).toMatch(new RegExp(`^${esc(web.podIP)}/32\\s+identity=${ids[web.podIP]} encryptkey=0 tunnelendpoint=0\\.0\\.0\\.0$`, 'm'));
    expect(file('bpf endpoint list')).toMatch(new RegExp(`^${esc(client.podIP)}:0\\s+id=${client.endpointID}\\s+sec_id=${ids[client.podIP]}\\s+flags=0x0000 ifindex=\\d+`, 'm'));
    expect(file('bpf metrics list')).toMatch(/^Success\s+(INGRESS|EGRESS)\s+[1-9]\d*\s+[1-9]\d*\s+0\s+unknown\(0\)$/m);
  });

  it('bpf ct flush global --from-file: refused while the agent runs, empties the files once it stopped', async () => {
    expect(refusedFlush).toMatchObject({ code: 1, err: expect.stringContaining('is running: flush through it') });
    const lines = file('bpf ct list global').trimEnd().split('\n').length;
    expect(await cli('bpf', 'ct', 'flush', 'global', '--from-file')).toMatchObject({ code: 0, out: `Flushed ${lines} entries from cilium_ct4_global and cilium_ct_any4_global\n` });
    expect(await cli('bpf', 'ct', 'list', 'global', '--from-file')).toEqual({ code: 0, out: '', err: '' });
  });
});
