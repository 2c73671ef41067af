// `ciliary trace` against a real agent: real curl and ping between pods, the CLI printing each
// packet's path (hooks, tail calls, map lookups, rewrites, events, verdict), a policy drop, a
// service DNAT, and the API's answers to conflicting or malformed requests.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { join } from 'node:path';
import { poll, requireRoot, run, spawnTracked, waitForOutput } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
const repo = join(import.meta.dirname, '..', '..');
const httpServer = (port = 80) => ['node', '-e', `require('http').createServer((q,s)=>s.end('ok\\n')).listen(${port},'0.0.0.0')`];

interface Block {
  header: string;
  lines: string[];
}

/** Splits the CLI's output into packet blocks (header, then indented lines with the verdict last). */
function blocks(out: string): Block[] {
  const res: Block[] = [];
  for (const chunk of out.split('\n\n')) {
    const lines = chunk.split('\n').filter((l) => l !== '');
    if (lines.length < 2 || lines[0].startsWith(' ')) continue;
    res.push({ header: lines[0], lines: lines.slice(1).map((l) => l.trim()) });
  }
  return res;
}

/** Checks that `want` appear in `lines` in this order (each a substring or a regexp). */
function inOrder(lines: string[], want: Array<string | RegExp>): void {
  let i = 0;
  for (const w of want) {
    const at = lines.findIndex((l, k) => k >= i && (typeof w === 'string' ? l.includes(w) : w.test(l)));
    if (at < 0) throw new Error(`missing ${String(w)} after line ${i} in:\n${lines.join('\n')}`);
    i = at + 1;
  }
}

describe.skipIf(!root)('ciliary trace', () => {
  let agent: TestAgent;
  let server: any;
  let client: any;

  const inPod = (pod: string, cmd: string[]) => run('ip', ['netns', 'exec', agent.podNetns(pod), ...cmd], 30_000);

  /** Runs `ciliary trace ARGS`, waits for its "Tracing started", and repeats `action` until the CLI exits; returns its stdout. */
  async function traceWhile(args: string[], action: () => Promise<unknown>): Promise<string> {
    const cli = spawnTracked(join(repo, 'bin', 'ciliary'), ['--socket', agent.socket, 'trace', ...args]);
    let out = '';
    let err = '';
    cli.stdout!.on('data', (d) => (out += d));
    cli.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number>((r) => cli.once('exit', (c) => r(c ?? -1)));
    let done = false;
    void exited.then(() => (done = true));
    await waitForOutput(cli, /^Tracing started: /, 'ciliary trace to start', 15_000);
    const deadline = Date.now() + 30_000;
    while (!done && Date.now() < deadline) await action();
    if (!done) cli.kill();
    const code = await exited;
    if (code !== 0) throw new Error(`ciliary trace exited ${code}: ${err}`);
    return out;
  }

  beforeAll(async () => {
    agent = new TestAgent();
    await agent.start();
    server = await agent.createPod('server', { app: 'server' }, httpServer());
    client = await agent.createPod('client', { app: 'client' });
    await poll('the server pod to answer', async () => (await inPod('client', ['curl', '-s', '--max-time', '1', `http://${server.podIP}/`])).code === 0, 15_000, 100);
  });
  afterAll(async () => {
    await agent?.destroy();
  });

  it('pod → pod TCP: the SYN through every program, its map lookups and the delivery', async () => {
    const out = await traceWhile(['--pod', 'client', '--proto', 'tcp', '--port', '80', '--count', '12', '--timeout', '30'],
      () => inPod('client', ['curl', '-s', '--max-time', '1', `http://${server.podIP}/`]));
    expect(out).toMatch(/12 packets traced\n$/);
    const all = blocks(out);
    expect(all).toHaveLength(12);
    const syn = all.find((b) => new RegExp(`from endpoint ${client.endpointID} \\(default/client\\) ${client.podIP.replace(/\./g, '\\.')}:\\d+ -> ${server.podIP.replace(/\./g, '\\.')}:80 TCP SYN length 60$`).test(b.header));
    expect(syn, out).toBeDefined();
    const port = /:(\d+) ->/.exec(syn!.header)![1];
    inOrder(syn!.lines, [
      `cil_from_container (endpoint ${client.endpointID} (default/client))`,
      /^CILIUM_CALL_IPV4_FROM_LXC tail_handle_ipv4 /,
      `cilium_lb4_services_v2 lookup ${server.podIP}:80/TCP → miss`,
      /^CILIUM_CALL_IPV4_CT_EGRESS tail_ipv4_ct_egress /,
      `cilium_ct4_global lookup TCP OUT ${client.podIP}:${port} -> ${server.podIP}:80 → miss (new)`,
      /^CILIUM_CALL_IPV4_FROM_LXC_CONT handle_ipv4_from_lxc /,
      new RegExp(`^cilium_ipcache lookup ${server.podIP}/32 → hit identity=\\d+`),
      `cilium_ct4_global insert TCP OUT ${client.podIP}:${port} -> ${server.podIP}:80 rev_nat=0 → inserted`,
      `cilium_lxc lookup ${server.podIP} → hit id=${server.endpointID}`,
      'TTL 64 → 63',
      new RegExp(`^CILIUM_CALL_IPV4_TO_ENDPOINT tail_ipv4_to_endpoint \\(cilium_calls_0*${server.endpointID}\\[13\\]`),
      `cilium_ct4_global lookup TCP IN ${client.podIP}:${port} -> ${server.podIP}:80 → miss (new)`,
      `cilium_ct4_global insert TCP IN`,
      'event trace to-endpoint',
      new RegExp(`^→ redirect fd=\\d+ \\(to-endpoint ${server.endpointID} default/server\\)$`),
    ]);
    // The server's SYN-ACK (to the client's address, so the pod filter matches it): a CT reply.
    const synAck = all.find((b) => b.header.includes(`${server.podIP}:80 -> ${client.podIP}:${port} TCP SYN,ACK`));
    if (synAck) {
      inOrder(synAck.lines, [
        `cil_from_container (endpoint ${server.endpointID} (default/server))`,
        `cilium_ct4_global lookup TCP OUT ${server.podIP}:80 -> ${client.podIP}:${port} → hit reply`,
        new RegExp(`^→ redirect fd=\\d+ \\(to-endpoint ${client.endpointID} default/client\\)$`),
      ]);
    }
  });

  it('ping: request and reply, ICMP through CT', async () => {
    const out = await traceWhile(['--ip', server.podIP, '--proto', 'icmp', '--count', '2', '--timeout', '30', '-o', 'json'],
      () => inPod('client', ['ping', '-c', '1', '-W', '1', server.podIP]));
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    const [req, rep] = lines;
    expect(req.header).toContain(`${client.podIP} -> ${server.podIP} ICMP EchoRequest`);
    expect(req.steps[0]).toBe(`cil_from_container (endpoint ${client.endpointID} (default/client))`);
    expect(req.steps.some((s: string) => s.startsWith(`cilium_ct_any4_global lookup ICMP OUT ${client.podIP} -> ${server.podIP} id=`))).toBe(true);
    expect(req.verdict).toMatch(/^→ redirect fd=\d+ \(to-endpoint /);
    expect(rep.header).toContain(`${server.podIP} -> ${client.podIP} ICMP EchoReply`);
    expect(rep.steps.some((s: string) => /^cilium_ct_any4_global lookup ICMP OUT .* → hit reply/.test(s))).toBe(true);
    expect(rep.verdict).toMatch(/^→ redirect fd=\d+ \(to-endpoint /);
  });

  it('a policy drop ends with ✗ drop 133 Policy denied after the policy map lookups', async () => {
    const cnp = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'only-8080', namespace: 'default' },
      spec: { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] } };
    expect((await agent.api('PUT', '/v1/policy', [cnp])).status).toBeLessThan(300);
    try {
      const out = await traceWhile(['--pod', 'server', '--port', '80', '--count', '1', '--timeout', '30'],
        () => inPod('client', ['curl', '-s', '--max-time', '0.5', `http://${server.podIP}/`]));
      const [b] = blocks(out);
      inOrder(b.lines, [
        /^CILIUM_CALL_IPV4_TO_ENDPOINT tail_ipv4_to_endpoint /,
        /^cilium_ct4_global lookup TCP IN .* → miss \(new\)$/,
        new RegExp(`^cilium_policy_${server.endpointID} lookup \\(id=${client.identity ?? '\\d+'}, ingress, TCP, 80\\) → (hit|miss) no allow: Policy denied`),
        'event policy-verdict ingress',
        'event drop (Policy denied)',
        '✗ drop 133 Policy denied',
      ]);
    } finally {
      await agent.api('DELETE', '/v1/policy?all=true');
    }
  });

  it('a service: frontend hit, backend chosen, DNAT to the backend', async () => {
    const r = await agent.api('POST', '/v1/services', { namespace: 'default', name: 'web', selector: { app: 'server' }, ports: [{ port: 8000, targetPort: 80 }] });
    expect(r.status).toBeLessThan(300);
    const vip = r.body.service.clusterIP as string;
    const out = await traceWhile(['--dst-ip', vip, '--count', '1', '--timeout', '30'],
      () => inPod('client', ['curl', '-s', '--max-time', '1', `http://${vip}:8000/`]));
    const [b] = blocks(out);
    expect(b.header).toContain(`-> ${vip}:8000 TCP SYN`);
    inOrder(b.lines, [
      /^CILIUM_CALL_IPV4_FROM_LXC tail_handle_ipv4 /,
      new RegExp(`^cilium_lb4_services_v2 lookup ${vip}:8000/TCP → hit rev_nat=\\d+ backends=1$`),
      /^cilium_ct4_global lookup TCP SERVICE .* → miss$/,
      /^select backend: random slot 1 → id=\d+$/,
      new RegExp(`^cilium_lb4_backends_v3 lookup id=\\d+ → hit ${server.podIP}:80$`),
      /^cilium_ct4_global insert TCP SERVICE .* → inserted$/,
      `DNAT ${vip}:8000 → ${server.podIP}:80`,
      /^CILIUM_CALL_IPV4_CT_EGRESS /,
      /^CILIUM_CALL_IPV4_TO_ENDPOINT /,
      /^→ redirect fd=\d+ \(to-endpoint /,
    ]);
  });

  it('API: one trace at a time (409), bad filters (400), unknown pod (404), ends on timeout', async () => {
    const first = await agent.openStream('/v1/trace?ip=192.0.2.1&timeout=1.5');
    expect(await first.waitFor('the started record', (e) => 'started' in e)).toEqual({ started: { count: 10, timeoutSeconds: 1.5 } });
    const second = await agent.api('GET', '/v1/trace?ip=192.0.2.1&timeout=1');
    expect(second.status).toBe(409);
    expect(second.body.error ?? second.body.message).toMatch(/already running/);
    const t0 = Date.now();
    await first.ended;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(first.events).toHaveLength(1); // started, then nothing matched: ended by the timeout
    expect((await agent.api('GET', '/v1/trace?proto=gre')).status).toBe(400);
    expect((await agent.api('GET', '/v1/trace?pod=nope&timeout=1')).status).toBe(404);
    // The CLI reports the agent's refusal.
    const held = await agent.openStream('/v1/trace?ip=192.0.2.1&timeout=5');
    await held.waitFor('the started record', (e) => 'started' in e);
    const cli = await run(join(repo, 'bin', 'ciliary'), ['--socket', agent.socket, 'trace', '--ip', '192.0.2.1']);
    held.close();
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/already running/);
  });
});
