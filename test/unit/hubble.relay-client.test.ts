// The relay as the agent running it serves it: two nodes' Observers behind a real relay, the agent's
// /v1/flows, /v1/hubble/status and /v1/hubble/nodes answered through it on a unix socket, and the
// CLI's `observe`, `hubble status` and `hubble list nodes` printing hubble's shapes; a node stopped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Flow, FlowEndpoint } from '../../src/observe/flow.ts';
import { Hubble } from '../../src/observe/hubble/observer.ts';
import { startObserverServer } from '../../src/observe/hubble/grpc/server.ts';
import { startRelay, type Relay } from '../../src/observe/hubble/grpc/relay.ts';
import type { GrpcServer } from '../../src/observe/hubble/grpc/serve.ts';
import { RelayClient, RelayFlowSource } from '../../src/observe/hubble/grpc/relay-client.ts';
import { flowsPlugin } from '../../src/api/flows.ts';
import { main } from '../../src/cli/main.ts';
import { goDuration } from '../../src/cli/hubble-nodes.ts';
import { stampMilli } from '../../src/observe/hubble/printer.ts';
import type { AgentStatus } from '../../src/control/types.ts';

const pod = (name: string, identity: number, id?: number): FlowEndpoint => ({
  ...(id ? { ID: id } : {}), identity, namespace: 'default', pod_name: name, labels: [`k8s:class=${name}`, 'k8s:io.kubernetes.pod.namespace=default'],
});
const XWING = pod('xwing', 7207, 101);
const DEATHSTAR = pod('deathstar-8c4c77fb7-nnzkt', 15933, 202);
let seq = 0;

/** One packet of xwing → deathstar:80 seen at `point` on `node`. */
function flow(node: string, time: string, point: 'TO_NETWORK' | 'TO_ENDPOINT', extra: Partial<Flow> = {}): Flow {
  return {
    time, uuid: `uuid-${++seq}`, verdict: 'FORWARDED', IP: { source: '172.20.1.10', destination: '172.20.2.20', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 43318, destination_port: 80, flags: { SYN: true } } }, source: XWING, destination: DEATHSTAR, Type: 'L3_L4',
    node_name: node, event_type: { type: 4, sub_type: point === 'TO_NETWORK' ? 11 : 0 }, trace_observation_point: point, is_reply: false,
    Summary: 'TCP Flags: SYN', ...extra,
  };
}

function observer(node: string, flows: Flow[]): Hubble {
  const h = new Hubble({ capacity: 4095, nodeName: node, resolver: { resolve: () => ({ identity: 2, labels: ['reserved:world'] }) } });
  for (const f of flows) h.add(f);
  return h;
}

const T = `${new Date(Date.now() - 120_000).toISOString().slice(0, 17)}0`;
const w1 = observer('k8s-w1', [flow('k8s-w1', `${T}1.815Z`, 'TO_NETWORK')]);
const w2 = observer('k8s-w2', [flow('k8s-w2', `${T}1.816Z`, 'TO_ENDPOINT'), flow('k8s-w2', `${T}2.5Z`, 'TO_ENDPOINT', { verdict: 'DROPPED', drop_reason: 133, drop_reason_desc: 'POLICY_DENIED', event_type: { type: 1, sub_type: 133 }, is_reply: undefined, trace_observation_point: undefined })]);

describe('observe, hubble status and hubble list nodes through the relay', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ciliary-relay-client-'));
  const sock = join(dir, 'agent.sock');
  const servers: GrpcServer[] = [];
  let relay: Relay;
  let client: RelayClient;
  let app: FastifyInstance;

  const cli = async (...argv: string[]) => {
    let out = '';
    let err = '';
    const code = await main(['--socket', sock, ...argv], { out: (s) => (out += s), err: (s) => (err += s) }, {});
    return { code, out, err };
  };

  beforeAll(async () => {
    servers.push(
      await startObserverServer({ address: '127.0.0.1:0', hubble: w1, nodeName: 'k8s-w1', version: '0.1.0' }),
      await startObserverServer({ address: '127.0.0.1:0', hubble: w2, nodeName: 'k8s-w2', version: '0.1.0' }),
    );
    relay = await startRelay({
      address: '127.0.0.1:0', peers: servers.map((s) => `127.0.0.1:${s.port}`), version: '0.1.0', nodeName: 'k8s-ctr',
      sortBufferDrainMs: 50, callTimeoutMs: 1000, retryMs: { initial: 50, max: 200 },
    });
    client = new RelayClient(`127.0.0.1:${relay.port}`);
    app = Fastify();
    const agent = { hubbleRelay: client, nodeName: 'k8s-ctr', status: () => ({ version: '0.1.0' }) as AgentStatus };
    await app.register(flowsPlugin, { agent });
    await app.listen({ path: sock });
  });
  afterAll(async () => {
    await app.close();
    client.close();
    await relay.close();
    for (const s of servers) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('observe: both nodes\' flows in time order, to-network from the sender\'s node then to-endpoint from the receiver\'s', async () => {
    const r = await cli('observe', '--last', '5', '--print-node-name');
    expect(r.code, r.err).toBe(0);
    const line = (t: string, node: string, point: string) =>
      `${stampMilli(`${T}${t}Z`)} [${node}]: default/xwing:43318 (ID:7207) -> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) ${point} FORWARDED (TCP Flags: SYN)`;
    expect(r.out.trimEnd().split('\n')).toEqual([
      line('1.815', 'k8s-w1', 'to-network'),
      line('1.816', 'k8s-w2', 'to-endpoint'),
      `${stampMilli(`${T}2.5Z`)} [k8s-w2]: default/xwing:43318 (ID:7207) <> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) Policy denied DROPPED (TCP Flags: SYN)`,
    ]);
    // Filters travel to every node.
    const drops = await cli('observe', '--verdict', 'DROPPED');
    expect(drops.out).toMatch(/^.* Policy denied DROPPED \(TCP Flags: SYN\)\n$/);
  });

  it('hubble status sums the nodes: Current/Max Flows and Connected Nodes: 2/2', async () => {
    const r = await cli('hubble', 'status');
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toBe('Healthcheck (via localhost:4245): Ok');
    expect(lines[1]).toBe(`Current/Max Flows: ${w1.status().currentFlows + w2.status().currentFlows}/8,190 (${(((w1.status().currentFlows + w2.status().currentFlows) / 8190) * 100).toFixed(2)}%)`);
    expect(lines[2]).toMatch(/^Flows\/s: (\d+\.\d\d|N\/A)$/);
    expect(lines.slice(3)).toEqual(['Connected Nodes: 2/2']);
  });

  it('hubble list nodes: hubble\'s table of both nodes', async () => {
    const r = await cli('hubble', 'list', 'nodes');
    expect(r.code, r.err).toBe(0);
    const rows = r.out.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^NAME {3,}STATUS {3,}AGE {3,}FLOWS\/S {3,}CURRENT\/MAX-FLOWS$/);
    expect(rows.slice(1).map((l) => l.split(/ {3,}/))).toEqual([
      ['k8s-w1', 'Connected', expect.stringMatching(/^(\d+s|N\/A)$/), expect.stringMatching(/^(\d+\.\d\d|N\/A)$/), expect.stringMatching(/^\d+\/4095 \( {1,2}\d+\.\d\d%\)$/)],
      ['k8s-w2', 'Connected', expect.stringMatching(/^(\d+s|N\/A)$/), expect.stringMatching(/^(\d+\.\d\d|N\/A)$/), expect.stringMatching(/^\d+\/4095 \( {1,2}\d+\.\d\d%\)$/)],
    ]);
    const wide = await cli('hubble', 'list', 'nodes', '-o', 'wide');
    expect(wide.out.split('\n')[0]).toMatch(/CURRENT\/MAX-FLOWS {3,}VERSION {3,}ADDRESS {3,}TLS$/);
    expect(wide.out).toMatch(new RegExp(`k8s-w1 .* 0\\.1\\.0 {3,}127\\.0\\.0\\.1:${servers[0].port} {3,}Disabled\n`));
  });

  it('a stopped node: Connected Nodes: 1/2 with its name, Unavailable in the table, and told on stderr by observe', async () => {
    const port = servers[1].port;
    await servers.pop()!.close();
    const status = await cli('hubble', 'status');
    expect(status.out).toMatch(/\nConnected Nodes: 1\/2\nUnavailable Nodes: 1\n {2}- k8s-w2\n$/);
    expect(status.out).toContain(`Current/Max Flows: ${w1.status().currentFlows}/4,095 `);
    const nodes = await cli('hubble', 'list', 'nodes');
    expect(nodes.out.trimEnd().split('\n')[2].split(/ {3,}/)).toEqual(['k8s-w2', 'Unavailable', 'N/A', 'N/A', 'N/A']);
    const obs = await cli('observe', '--last', '5');
    expect(obs.code).toBe(0);
    expect(obs.err).toMatch(/^\w{3} [ \d]\d \d\d:\d\d:\d\d\.\d{3} \[k8s-ctr\]: 1 nodes are unavailable: k8s-w2\n$/);
    expect(obs.out).toContain('to-network FORWARDED');
    expect(obs.out).not.toContain('to-endpoint');
    servers.push(await startObserverServer({ address: `127.0.0.1:${port}`, hubble: w2, nodeName: 'k8s-w2', version: '0.1.0' }));
  });

  it('the relay as the web page\'s flow source: every node\'s newest flows, then new ones', async () => {
    for (let i = 0; i < 200 && (await client.status()).connectedNodes < 2; i++) await new Promise((r) => setTimeout(r, 25));
    const src = client.flows;
    const seen: Flow[] = [];
    const off = src.onFlow((f) => seen.push(f));
    let recent: Flow[] = [];
    for (let i = 0; i < 100 && !(recent.some((f) => f.node_name === 'k8s-w1') && recent.some((f) => f.node_name === 'k8s-w2')); i++) {
      await new Promise((r) => setTimeout(r, 50));
      recent = src.recent(100);
    }
    expect(new Set(recent.map((f) => f.node_name))).toEqual(new Set(['k8s-w1', 'k8s-w2']));
    expect(recent.map((f) => f.time)).toEqual([...recent.map((f) => f.time)].sort());
    w2.add(flow('k8s-w2', new Date().toISOString(), 'TO_ENDPOINT', { uuid: 'live-one' }));
    for (let i = 0; i < 100 && !seen.some((f) => f.uuid === 'live-one'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(seen.find((f) => f.uuid === 'live-one')).toMatchObject({ node_name: 'k8s-w2', trace_observation_point: 'TO_ENDPOINT' });
    off();
  });

  it('the web page\'s relay source stops following when unused, and picks up only what came after when asked again', async () => {
    const src = new RelayFlowSource(client, 64, 50, 150);
    const poll = async (what: (fs: Flow[]) => boolean) => {
      for (let i = 0; i < 100; i++) {
        const fs = src.recent(64);
        if (what(fs)) return fs;
        await new Promise((r) => setTimeout(r, 30));
      }
      throw new Error('the relay source never got there');
    };
    // Every flow both nodes hold (fewer than 64).
    const held = w1.status().currentFlows + w2.status().currentFlows;
    await poll((fs) => fs.length === held);
    // Unused for longer than idleMs: the stream is cancelled, so a flow made now is not held yet.
    await new Promise((r) => setTimeout(r, 400));
    w1.add(flow('k8s-w1', new Date().toISOString(), 'TO_NETWORK', { uuid: 'after-the-gap' }));
    await new Promise((r) => setTimeout(r, 200));
    expect(src['stream']).toBeUndefined();
    // Asked again: it follows from its newest flow on, without the history twice.
    const again = await poll((fs) => fs.some((f) => f.uuid === 'after-the-gap'));
    expect(again.length).toBe(held + 1);
    expect(new Set(again.map((f) => f.uuid)).size).toBe(again.length);
    src.close();
  });

  it('observe -f: a flow made after the call arrives through the relay; the agent stopping ends it', async () => {
    let out = '';
    let err = '';
    const done = main(['--socket', sock, 'observe', '-f', '--node-name', 'k8s-w1'], { out: (s) => (out += s), err: (s) => (err += s) }, {});
    // The agent side: a new flow on k8s-w1 while the CLI follows.
    const later = flow('k8s-w1', new Date().toISOString(), 'TO_NETWORK', { IP: { source: '10.9.9.9', destination: '172.20.2.20', ipVersion: 'IPv4' }, source: { identity: 2, labels: ['reserved:world'] } });
    for (let i = 0; i < 100 && !out.includes('10.9.9.9'); i++) {
      if (i === 5) w1.add(later);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(out).toContain('10.9.9.9:43318 (world) -> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) to-network FORWARDED');
    // What k8s-w1 held came first, as the local -f sends it; nothing of k8s-w2 (filtered by node name).
    expect(out.split('\n')[0]).toBe(`${stampMilli(`${T}1.815Z`)}: default/xwing:43318 (ID:7207) -> default/deathstar-8c4c77fb7-nnzkt:80 (ID:15933) to-network FORWARDED (TCP Flags: SYN)`);
    expect(out).not.toContain('to-endpoint');
    // The agent going away ends the follow with an error, as hubble does.
    await app.close();
    expect(await done).toBe(1);
    expect(err).toContain('the agent closed the flow stream');
  });

  it('Go durations as hubble prints AGE', () => {
    expect([0, 45, 142, 3605].map(goDuration)).toEqual(['0s', '45s', '2m22s', '1h0m5s']);
  });
});
