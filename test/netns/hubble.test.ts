// Hubble with real traffic: `ciliary observe` (the CLI as a child process) shows the service translation
// sequence, a policy drop, replies, JSON fields and filter combinations for what the pods really sent.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { join } from 'node:path';
import { poll, requireRoot, run, spawnTracked, stop } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
const CLI = join(import.meta.dirname, '..', '..', 'bin', 'ciliary');
const server = ['node', '-e', `require('http').createServer((q,s)=>s.end(q.method==='POST'&&q.url==='/v1/request-landing'?'Ship landed\\n':'ok\\n')).listen(80,'0.0.0.0')`];
const TIME = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}: /;

describe.skipIf(!root)('hubble observe with real traffic', () => {
  const agent = new TestAgent();
  const ip: Record<string, string> = {};
  const id: Record<string, number> = {};
  let vip = '';

  const cli = async (...args: string[]) => {
    const r = await run(CLI, ['--socket', agent.socket, ...args], 30_000);
    if (r.code !== 0) throw new Error(`ciliary ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    return r.stdout;
  };
  const observe = async (...args: string[]) => (await cli('observe', ...args)).split('\n').filter(Boolean).map((l) => {
    expect(l).toMatch(TIME);
    return l.replace(TIME, '');
  });
  /** `ciliary observe ARGS` again until `done` accepts its lines (flows reach Hubble a moment after the packets). */
  const observeUntil = async (done: (lines: string[]) => boolean, ...args: string[]) => {
    let lines: string[] = [];
    await poll(`observe ${args.join(' ')} to show the flows`, async () => done((lines = await observe(...args))), 10_000, 200)
      .catch((e: Error) => { throw new Error(`${e.message}; last output:\n${lines.join('\n')}`); });
    return lines;
  };
  const curl = (pod: string, url: string, method = 'GET', signal?: AbortSignal) => run('ip', ['netns', 'exec', agent.podNetns(pod), 'curl', '-s', '--connect-timeout', '2', '-X', method, url], 15_000, signal);
  const rule1 = {
    apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'rule1', namespace: 'default' },
    spec: { endpointSelector: { matchLabels: { org: 'empire', class: 'deathstar' } }, ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
  };
  /** Applies rule1 and sends the xwing's SYN into it: resolves once the datapath reported the drop. */
  const xwingDenied = async () => {
    expect((await agent.api('PUT', '/v1/policy', [rule1])).status).toBeLessThan(300);
    await agent.expectEvent('?type=drop', 'the xwing SYN dropped by rule1', (e) => e.reason === 133 && e.summary.endsWith(`-> ${ip.deathstar}:80 tcp SYN`),
      (signal) => curl('xwing', `http://${ip.deathstar}/v1/request-landing`, 'POST', signal), { stopAction: true });
  };

  beforeAll(async () => {
    await agent.start();
    for (const [name, labels, cmd] of [
      ['deathstar', { org: 'empire', class: 'deathstar' }, server],
      ['tiefighter', { org: 'empire', class: 'tiefighter' }, undefined],
      ['xwing', { org: 'alliance', class: 'xwing' }, undefined],
    ] as const) {
      const p = await agent.createPod(name, labels, cmd ? [...cmd] : undefined);
      ip[name] = p.podIP;
      id[name] = agent.api ? (await agent.api('GET', `/v1/endpoint/${p.endpointID}`)).body.identity : 0;
    }
    const svc = await agent.api('POST', '/v1/services', { name: 'deathstar', namespace: 'default', selector: { class: 'deathstar' }, ports: [{ port: 80 }] });
    expect(svc.status).toBeLessThan(300);
    vip = svc.body.clusterIP ?? svc.body.service?.clusterIP;
    await poll('the deathstar service to answer', async () => (await curl('tiefighter', `http://${vip}/`)).stdout === 'ok\n', 15_000, 200);
  });
  afterAll(() => agent.destroy());

  it('a service connection: pre-xlate-fwd TRACED, post-xlate-fwd TRANSLATED, to-endpoint FORWARDED; the reply with <-', async () => {
    await agent.api('DELETE', '/v1/policy?all=true');
    expect((await curl('xwing', `http://${vip}/v1/request-landing`, 'POST')).stdout).toBe('Ship landed\n');
    const x = `default/xwing (ID:${id.xwing})`;
    const lines = await observeUntil((ls) => ls.some((l) => l.startsWith(`${x} <> ${vip}:80 (world) pre-xlate-fwd`)), '--from-pod', 'xwing', '--last', '100');
    const ds = `default/deathstar:80 (ID:${id.deathstar})`;
    const pre = lines.lastIndexOf(`${x} <> ${vip}:80 (world) pre-xlate-fwd TRACED (TCP)`);
    const post = lines.lastIndexOf(`${x} <> ${ds} post-xlate-fwd TRANSLATED (TCP)`);
    const syn = lines.findIndex((l, i) => i > post && new RegExp(`^default/xwing:(\\d+) \\(ID:${id.xwing}\\) -> default/deathstar:80 \\(ID:${id.deathstar}\\) to-endpoint FORWARDED \\(TCP Flags: SYN\\)$`).test(l));
    expect(pre, lines.join('\n')).toBeGreaterThanOrEqual(0);
    expect(post).toBeGreaterThan(pre);
    expect(syn).toBeGreaterThan(post);
    const port = /^default\/xwing:(\d+)/.exec(lines[syn])![1];
    // The SYN-ACK from the deathstar, a reply: the client stays on the left.
    const replies = await observe('--from-pod', 'deathstar', '--to-port', port, '--last', '50');
    expect(replies).toContain(`default/xwing:${port} (ID:${id.xwing}) <- default/deathstar:80 (ID:${id.deathstar}) to-endpoint FORWARDED (TCP Flags: SYN, ACK)`);
    expect(await observe('--from-pod', 'deathstar', '--to-pod', 'xwing', '--type', 'trace-sock', '--last', '1'))
      .toEqual([`default/deathstar:80 (ID:${id.deathstar}) <> default/xwing (ID:${id.xwing}) pre-xlate-rev TRACED (TCP)`]);
    // No policy selects any pod yet: as Cilium's, no direction is enforced, so no policy verdicts.
    expect(await observe('--type', 'policy-verdict', '--last', '100')).toEqual([]);
  });

  it('a policy drop prints "Policy denied DROPPED (TCP Flags: SYN)"; filters combine as hubble\'s', async () => {
    await xwingDenied();
    expect((await curl('tiefighter', `http://${ip.deathstar}/v1/request-landing`, 'POST')).stdout).toBe('Ship landed\n');
    // The drop and the policy verdict that denied it: both have verdict DROPPED (hubble prints both).
    const dropRe = new RegExp(`^default/xwing:\\d+ \\(ID:${id.xwing}\\) <> default/deathstar:80 \\(ID:${id.deathstar}\\) Policy denied DROPPED \\(TCP Flags: SYN\\)$`);
    const deniedRe = new RegExp(`^default/xwing:\\d+ \\(ID:${id.xwing}\\) <> default/deathstar:80 \\(ID:${id.deathstar}\\) policy-verdict:none INGRESS DENIED \\(TCP Flags: SYN\\)$`);
    const drops = await observeUntil((ls) => ls.some((l) => dropRe.test(l)) && ls.some((l) => deniedRe.test(l)), '--from-pod', 'xwing', '--to-port', '80', '--verdict', 'DROPPED');
    for (const l of drops) expect(l).toMatch(new RegExp(`${dropRe.source}|${deniedRe.source}`));
    expect(drops.some((l) => dropRe.test(l))).toBe(true);
    expect(drops.some((l) => deniedRe.test(l))).toBe(true);
    // Same flag OR, different flags AND, --not.
    expect(await observe('--from-pod', 'tiefighter', '--to-port', '80', '--verdict', 'DROPPED')).toEqual([]);
    const both = await observeUntil((ls) => ls.some((l) => l.startsWith('default/tiefighter:') && / policy-verdict:L3-L4 INGRESS ALLOWED /.test(l)),
      '--from-pod', 'xwing', '--from-pod', 'tiefighter', '--to-pod', 'deathstar', '--type', 'drop', '--type', 'policy-verdict', '--last', '200');
    expect(both.some((l) => / Policy denied DROPPED /.test(l))).toBe(true);
    expect(both.some((l) => l.startsWith('default/tiefighter:') && / policy-verdict:L3-L4 INGRESS ALLOWED \(TCP Flags: SYN\)$/.test(l))).toBe(true);
    expect(both.some((l) => l.startsWith('default/xwing:') && / policy-verdict:none INGRESS DENIED \(TCP Flags: SYN\)$/.test(l))).toBe(true);
    const notDropped = await observe('--from-pod', 'xwing', '--not', '--verdict', 'DROPPED', '--last', '500');
    expect(notDropped.length).toBeGreaterThan(0);
    expect(notDropped.some((l) => / DROPPED /.test(l))).toBe(false);
    const drop1 = await observe('--type', 'drop', '--last', '1');
    expect(drop1).toHaveLength(1);
    expect(drop1[0]).toMatch(/ Policy denied DROPPED \(TCP Flags: SYN\)$/);
    await agent.api('DELETE', '/v1/policy?all=true');
  });

  it('-o json prints hubble\'s GetFlowsResponse with the flow\'s fields', async () => {
    await xwingDenied();
    await agent.api('DELETE', '/v1/policy?all=true');
    await observeUntil((ls) => ls.length > 0, '--from-pod', 'xwing', '--verdict', 'DROPPED', '--last', '1');
    const out = (await cli('observe', '--from-pod', 'xwing', '--verdict', 'DROPPED', '--last', '1', '-o', 'json')).trim().split('\n');
    expect(out).toHaveLength(1);
    const r = JSON.parse(out[0]);
    expect(Object.keys(r)).toEqual(['flow', 'node_name', 'time']);
    expect(r.node_name).toBe(agent.node);
    expect(r.flow).toMatchObject({
      verdict: 'DROPPED', drop_reason: 133, drop_reason_desc: 'POLICY_DENIED', Type: 'L3_L4', node_name: agent.node,
      IP: { source: ip.xwing, destination: ip.deathstar, ipVersion: 'IPv4' },
      l4: { TCP: { destination_port: 80, flags: { SYN: true } } },
      source: { identity: id.xwing, namespace: 'default', pod_name: 'xwing' },
      destination: { identity: id.deathstar, namespace: 'default', pod_name: 'deathstar' },
      event_type: { type: 1, sub_type: 133 }, traffic_direction: 'INGRESS', Summary: 'TCP Flags: SYN',
    });
    expect(r.flow.source.labels).toContain('k8s:class=xwing');
    const dict = await cli('observe', '--from-pod', 'xwing', '--type', 'drop', '--last', '2', '-o', 'dict');
    expect(dict).toMatch(/^ {2}TIMESTAMP: .+\n {5}SOURCE: default\/xwing:\d+\nDESTINATION: default\/deathstar:80\n {7}TYPE: Policy denied\n {4}VERDICT: DROPPED\n {4}SUMMARY: TCP Flags: SYN\n------------\n/);
    const table = (await cli('observe', '--from-pod', 'xwing', '--verdict', 'DROPPED', '--last', '2', '-o', 'table')).split('\n');
    expect(table[0]).toMatch(/^TIMESTAMP {13}SOURCE +DESTINATION +TYPE +VERDICT +SUMMARY$/);
  });

  it('follow (-f) streams new flows as they happen', async () => {
    const child = spawnTracked(CLI, ['--socket', agent.socket, 'observe', '-f', '--from-pod', 'tiefighter', '--to-port', '80', '--type', 'trace:to-endpoint']);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    // No ready line to wait for: connect until this connection's SYN (by its source port) is printed.
    const printed = (port: string) => out.split('\n').some((l) => l.includes(`default/tiefighter:${port} `) && / to-endpoint FORWARDED \(TCP Flags: SYN\)$/.test(l));
    await poll('a followed SYN flow of a new connection', async () => {
      const port = (await run('ip', ['netns', 'exec', agent.podNetns('tiefighter'), 'curl', '-s', '-o', '/dev/null', '-w', '%{local_port}', `http://${ip.deathstar}/`])).stdout;
      return poll('its flow', () => printed(port), 2000).then(() => true, () => false);
    }, 15_000, 0);
    await stop(child);
    const lines = out.split('\n').filter(Boolean).map((l) => l.replace(TIME, ''));
    expect(lines.some((l) => new RegExp(`^default/tiefighter:\\d+ \\(ID:${id.tiefighter}\\) -> default/deathstar:80 \\(ID:${id.deathstar}\\) to-endpoint FORWARDED \\(TCP Flags: SYN\\)$`).test(l)), out).toBe(true);
    expect(lines.every((l) => / to-endpoint FORWARDED /.test(l))).toBe(true);
  });

  it('hubble status prints the healthcheck, flows and nodes', async () => {
    const out = await cli('hubble', 'status');
    expect(out).toMatch(/^Healthcheck \(via localhost:4245\): Ok\nCurrent\/Max Flows: [\d,]+\/4,095 \(\d+\.\d\d%\)\nFlows\/s: \d+\.\d\d\nConnected Nodes: 1\/1\n$/);
    const s = (await agent.api('GET', '/v1/hubble/status')).body;
    expect(s).toMatchObject({ maxFlows: 4095, connectedNodes: 1, totalNodes: 1 });
    expect(s.seenFlows).toBeGreaterThan(10);
  });
});
