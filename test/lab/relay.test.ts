// Hubble across three real agents over a real etcd (scripts/netns/cluster.sh up 3): the relay on
// k8s-ctr merges every node's flows, so `ciliary observe` there shows a cross-node curl as to-network
// on the sender's node and to-endpoint on the receiver's (a same-node one only as to-endpoint);
// `hubble status` sums the rings (Connected Nodes: 3/3), `hubble list nodes` lists the three, the
// web page's service map holds both workers' pods, and a stopped agent makes it 2/3.
// Names carry a per-run prefix and net, state lives in a temp dir: another lab on this machine is safe.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { requireRoot, run, sh } from '../helpers/sys.ts';
import { Lab, until } from '../helpers/lab.ts';

const root = requireRoot();
const lab = root ? new Lab('r') : (undefined as unknown as Lab);
const pod = (name: string) => lab.pod(name);
/** Answers with its hostname (the pod's name). */
const SERVER = ['node', '-e', "require('http').createServer((q,s)=>s.end(require('os').hostname()+'\\n')).listen(80,'0.0.0.0')"];

/** `hubble list nodes` rows as [NAME, STATUS, AGE, FLOWS/S, CURRENT/MAX-FLOWS]. */
const nodeRows = async () => (await lab.ok('k8s-ctr', 'hubble', 'list', 'nodes')).trimEnd().split('\n').slice(1).map((l) => l.split(/ {3,}/));

describe.skipIf(!root)('Hubble relay over three nodes', () => {
  const ip: Record<string, string> = {};

  beforeAll(async () => {
    await lab.up(3);
    ip.web = await lab.runPod('k8s-w1', pod('web'), 'app=web', SERVER);
    await lab.runPod('k8s-w2', pod('client'), 'app=client');
    await lab.runPod('k8s-w1', pod('neighbour'), 'app=neighbour');
  }, 300_000);

  afterAll(async () => {
    if (root) await lab.down();
  }, 120_000);

  it('observe on k8s-ctr: the cross-node SYN as to-network on the sender (k8s-w2) and to-endpoint on the receiver (k8s-w1)', async () => {
    // A first answer can take a while on a busy machine (the server process starting in its pod).
    expect(await until('web answering the client on w2', () => lab.curl('k8s-w2', pod('client'), `http://${ip.web}/`), 60_000)).toBe(`${pod('web')}\n`);
    const line = (node: string, point: string) => new RegExp(
      `^\\w{3} [ \\d]\\d [\\d:.]+ \\[${node}\\]: default/${pod('client')}:(\\d+) \\(ID:\\d+\\) -> default/${pod('web')}:80 \\(ID:\\d+\\) ${point} FORWARDED \\(TCP Flags: SYN\\)$`, 'm');
    // k8s-ctr runs none of these pods: both lines come from the other nodes through its relay.
    const out = await until('both lines through the relay', async () => {
      const o = await lab.ok('k8s-ctr', 'observe', '--from-pod', `default/${pod('client')}`, '--last', '200', '--print-node-name');
      return line('k8s-w2', 'to-network').test(o) && line('k8s-w1', 'to-endpoint').test(o) ? o : undefined;
    });
    // The same connection (source port) on both nodes, sender first (time order).
    const port = line('k8s-w2', 'to-network').exec(out)![1];
    const lines = out.split('\n');
    const sent = lines.findIndex((l) => line('k8s-w2', 'to-network').test(l) && l.includes(`:${port} `));
    const received = lines.findIndex((l) => line('k8s-w1', 'to-endpoint').test(l) && l.includes(`:${port} `));
    expect(sent).toBeGreaterThanOrEqual(0);
    expect(received).toBeGreaterThan(sent);
    // The plain format as hubble prints it without --print-node-name.
    expect(await lab.ok('k8s-ctr', 'observe', '--from-pod', `default/${pod('client')}`, '--last', '200'))
      .toMatch(new RegExp(`: default/${pod('client')}:${port} \\(ID:\\d+\\) -> default/${pod('web')}:80 \\(ID:\\d+\\) to-network FORWARDED \\(TCP Flags: SYN\\)$`, 'm'));
  });

  it('a same-node curl (both pods on k8s-w1) shows only to-endpoint', async () => {
    expect(await until('web answering its neighbour', () => lab.curl('k8s-w1', pod('neighbour'), `http://${ip.web}/`), 60_000)).toBe(`${pod('web')}\n`);
    const out = await until('the neighbour\'s SYN through the relay', async () => {
      const o = await lab.ok('k8s-ctr', 'observe', '--from-pod', `default/${pod('neighbour')}`, '--to-pod', `default/${pod('web')}`, '--last', '200', '--print-node-name');
      return / to-endpoint FORWARDED \(TCP Flags: SYN\)$/m.test(o) ? o : undefined;
    });
    const trace = out.split('\n').filter((l) => / (to-\S+) FORWARDED /.test(l));
    expect(trace.length).toBeGreaterThan(0);
    for (const l of trace) expect(l).toMatch(/\[k8s-w1\]: .* to-endpoint FORWARDED /);
  });

  it('hubble status on k8s-ctr: flows summed over the three rings and Connected Nodes: 3/3; hubble list nodes lists them', async () => {
    const status = await lab.ok('k8s-ctr', 'hubble', 'status');
    expect(status).toMatch(/^Healthcheck \(via localhost:4245\): Ok\nCurrent\/Max Flows: [\d,]+\/12,285 \(\d+\.\d\d%\)\nFlows\/s: (\d+\.\d\d|N\/A)\nConnected Nodes: 3\/3\n$/);
    const rows = await nodeRows();
    expect(rows.map((r) => [r[0], r[1], r[4].replace(/^\d+\//, 'N/')])).toEqual([
      ['k8s-ctr', 'Connected', expect.stringMatching(/^N\/4095 \( *\d+\.\d\d%\)$/)],
      ['k8s-w1', 'Connected', expect.stringMatching(/^N\/4095 \( *\d+\.\d\d%\)$/)],
      ['k8s-w2', 'Connected', expect.stringMatching(/^N\/4095 \( *\d+\.\d\d%\)$/)],
    ]);
    // The sum of the three rings is what status reports (asked again while flows may still come in).
    await until('status current = the sum of the nodes\' rings', async () => {
      const sum = (await nodeRows()).reduce((s, r) => s + Number(r[4].split('/')[0]), 0);
      const current = Number(/Current\/Max Flows: ([\d,]+)\//.exec(await lab.ok('k8s-ctr', 'hubble', 'status'))![1].replace(/,/g, ''));
      return current === sum && sum > 0 ? true : undefined;
    });
  });

  it('the web page on k8s-ctr draws both workers\' pods with their nodes, from the relay', async () => {
    const map = await until('the client → web edge on k8s-ctr\'s page', async () => {
      const r = await run('ip', ['netns', 'exec', lab.ns('k8s-ctr'), 'curl', '-s', '--max-time', '2', 'http://127.0.0.1:12000/api/servicemap']);
      const m = JSON.parse(r.stdout || '{}');
      return m.edges?.some((e: { id: string }) => e.id === `default/${pod('client')}->default/${pod('web')}`) ? m : undefined;
    });
    const node = (name: string) => map.nodes.find((n: { id: string }) => n.id === `default/${pod(name)}`);
    expect(node('client')).toMatchObject({ namespace: 'default', nodes: ['k8s-w2'] });
    expect(node('web')).toMatchObject({ namespace: 'default', nodes: ['k8s-w1'] });
    // Replies draw no edge back to the client.
    expect(map.edges.filter((e: { source: string }) => e.source === `default/${pod('web')}`)).toEqual([]);
  });

  it('an agent stopped on k8s-w2: Connected Nodes: 2/3 naming it, Unavailable in list nodes, observe goes on', async () => {
    const pid = String(lab.agentPid('k8s-w2'));
    sh('kill', ['-TERM', pid]);
    await until('the k8s-w2 agent gone', async () => (sh('ps', ['-o', 'stat=', '-p', pid], { allowFail: true }).trim().replace('Z', '') === '' ? true : undefined));
    const status = await until('2/3 connected', async () => {
      const s = await lab.ok('k8s-ctr', 'hubble', 'status');
      return s.includes('Connected Nodes: 2/3') ? s : undefined;
    });
    expect(status).toMatch(/Current\/Max Flows: [\d,]+\/8,190 .*\nFlows\/s: .*\nConnected Nodes: 2\/3\nUnavailable Nodes: 1\n {2}- k8s-w2\n$/);
    expect((await nodeRows()).map((r) => r.slice(0, 2))).toEqual([['k8s-ctr', 'Connected'], ['k8s-w1', 'Connected'], ['k8s-w2', 'Unavailable']]);
    const obs = await lab.cli('k8s-ctr', 'observe', '--last', '20');
    expect(obs.code, obs.err).toBe(0);
    expect(obs.err).toMatch(/\[k8s-ctr\]: 1 nodes are unavailable: k8s-w2\n/);
  });
});
