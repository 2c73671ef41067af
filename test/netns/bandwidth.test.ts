// The bandwidth manager lab (seeds-labs §4) on one node with a real agent and real TCP: a netperf
// server annotated kubernetes.io/egress-bandwidth, `netperf -t TCP_MAERTS` from a client pod through
// `ciliary exec`, the limit changed live by re-applying the running pod, the 162 drop with a tiny
// horizon, `bpf bandwidth list`, and an unlimited neighbour that is not slowed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, run, sleep } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
const repo = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'ciliary-bandwidth-'));
const SECONDS = 4;
const EGRESS = 'kubernetes.io/egress-bandwidth';

/** The seed's two pods (the client without its anti-affinity: there is one node), plus an unlimited neighbour server. */
function manifest(annotations: Record<string, string> | undefined): string {
  const ann = annotations ? `  annotations:\n${Object.entries(annotations).map(([k, v]) => `    ${k}: "${v}"\n`).join('')}` : '';
  return `apiVersion: v1
kind: Pod
metadata:
${ann}  labels:
    app.kubernetes.io/name: netperf-server
  name: netperf-server
spec:
  containers:
  - name: netperf
    image: cilium/netperf
    ports:
    - containerPort: 12865
`;
}
const OTHERS = `apiVersion: v1
kind: Pod
metadata:
  name: netperf-client
spec:
  containers:
  - name: netperf
    args: [sleep, infinity]
    image: cilium/netperf
---
apiVersion: v1
kind: Pod
metadata:
  name: neighbour-server
spec:
  containers:
  - name: netperf
    image: cilium/netperf
`;

function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

type PodView = { name: string; status: { podIP: string; endpointID: number; pid?: number } };

class Lab {
  constructor(readonly agent: TestAgent) {}

  cli(...args: string[]) {
    return run(join(repo, 'bin', 'ciliary'), ['--socket', this.agent.socket, ...args], 60_000);
  }

  async pod(name: string): Promise<PodView> {
    const pods = (await this.agent.api('GET', '/v1/resources/pods')).body as PodView[];
    const p = pods.find((x) => x.name === name);
    if (!p) throw new Error(`no pod ${name}`);
    return p;
  }

  /** `kubectl exec netperf-client -- netperf -t TCP_MAERTS -H SERVER`: the table and its throughput (10^6 bits/s). */
  async netperf(server: string, seconds = SECONDS): Promise<{ stdout: string; mbps: number }> {
    const ip = (await this.pod(server)).status.podIP;
    let last = '';
    // The server's iperf3 may still be starting: retry the connection, not the measurement.
    for (let i = 0; i < 50; i++) {
      const r = await this.cli('exec', 'netperf-client', '--', 'netperf', '-t', 'TCP_MAERTS', '-H', ip, '-l', String(seconds));
      if (r.code === 0) return { stdout: r.stdout, mbps: Number(r.stdout.trimEnd().split(/\s+/).pop()) };
      last = r.stderr;
      if (!/establish control/.test(r.stderr)) break;
      await sleep(200);
    }
    throw new Error(`netperf to ${server} failed: ${last}`);
  }

  async dropCount(reasonText: string): Promise<number> {
    const r = await this.cli('bpf', 'metrics', 'list');
    const line = r.stdout.split('\n').find((l) => l.includes(reasonText));
    return line ? Number(line.trim().split(/\s+/).filter((w) => /^\d+$/.test(w))[0]) : 0;
  }
}

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** An agent with the bandwidth manager and the netperf pods (server limited to 10M); removed after the suite. */
function labWith(args: string[], prefix: string): () => Lab {
  let lab: Lab;
  beforeAll(async () => {
    const agent = new TestAgent(['--enable-bandwidth-manager', ...args]);
    lab = new Lab(agent);
    await agent.start();
    const r = await lab.cli('apply', '-f', file(`${prefix}server.yaml`, manifest({ [EGRESS]: '10M' })), '-f', file(`${prefix}others.yaml`, OTHERS));
    expect(r.stderr).toBe('');
  }, 60_000);
  afterAll(async () => {
    for (const name of ['netperf-server', 'netperf-client', 'neighbour-server']) {
      const pid = (await lab?.pod(name).catch(() => undefined))?.status.pid;
      if (pid) try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await lab?.agent.destroy();
  });
  return () => lab;
}

describe.skipIf(!root)('bandwidth manager: EDT pacing from kubernetes.io/egress-bandwidth', () => {
  const lab = labWith([], '');

  it('status names EDT, and bpf bandwidth list shows the server endpoint at 10M', async () => {
    expect((await lab().cli('status')).stdout).toMatch(/^BandwidthManager:\s+EDT with BPF \[CUBIC\]/m);
    const id = (await lab().pod('netperf-server')).status.endpointID;
    const list = await lab().cli('bpf', 'bandwidth', 'list');
    expect(list.stdout).toBe(`IDENTITY   EGRESS BANDWIDTH (BitsPerSec)\n${String(id).padEnd(8)}   10M\n`);
    expect(JSON.parse((await lab().cli('endpoint', 'get', String(id))).stdout)).toMatchObject({ id, podName: 'default/netperf-server', egressBandwidth: '10M' });
  });

  it('netperf -t TCP_MAERTS measures 0.85-1.0 of 10M and prints netperf\'s table', async () => {
    const { stdout, mbps } = await lab().netperf('netperf-server');
    const lines = stdout.split('\n');
    expect(lines.slice(0, 4)).toEqual(['Recv   Send    Send', 'Socket Socket  Message  Elapsed', 'Size   Size    Size     Time     Throughput', 'bytes  bytes   bytes    secs.    10^6bits/sec']);
    expect(lines[4]).toMatch(/^\d+ +\d+ +16384 +\d+\.\d\d +\d+\.\d\d$/);
    expect(mbps).toBeGreaterThanOrEqual(8.5);
    expect(mbps).toBeLessThanOrEqual(10);
  }, 60_000);

  it('re-applying the running pod with 5M and then 20M changes the limit live, without a restart', async () => {
    const before = await lab().pod('netperf-server');
    const bin = join(repo, 'bin', 'ciliary');
    // The seed's own step first: the running pod read back as JSON, edited, applied again.
    const seedStep = (from: string, to: string) =>
      run('sh', ['-c', `'${bin}' --socket '${lab().agent.socket}' get pod netperf-server -o json | sed -e 's|${from}|${to}|g' | '${bin}' --socket '${lab().agent.socket}' apply -f -`]);
    for (const [text, limit, apply] of [
      ['5M', 5, () => seedStep('10M', '5M')],
      ['20M', 20, () => lab().cli('apply', '-f', file('server-20M.yaml', manifest({ [EGRESS]: '20M' })))],
    ] as const) {
      const r = await apply();
      expect(r.stdout, r.stderr).toBe('pod/netperf-server configured\n');
      expect((await lab().cli('bpf', 'bandwidth', 'list')).stdout).toContain(`   ${text}\n`);
      const { mbps } = await lab().netperf('netperf-server');
      expect(mbps, text).toBeGreaterThanOrEqual(0.85 * limit);
      expect(mbps, text).toBeLessThanOrEqual(limit);
    }
    const after = await lab().pod('netperf-server');
    expect(after.status.pid).toBe(before.status.pid);
    expect(after.status.endpointID).toBe(before.status.endpointID);
  }, 120_000);

  it('an unlimited neighbour is not slowed by the limited server next to it', async () => {
    const [limited, free] = await Promise.all([lab().netperf('netperf-server'), lab().netperf('neighbour-server')]);
    expect(limited.mbps).toBeLessThanOrEqual(20);
    expect(free.mbps).toBeGreaterThan(10 * 20);
  }, 60_000);

  it('an agent restart keeps the limit and the pacing', async () => {
    await lab().agent.kill();
    await lab().agent.start();
    expect((await lab().cli('bpf', 'bandwidth', 'list')).stdout).toContain('   20M\n');
    const { mbps } = await lab().netperf('netperf-server', 2);
    expect(mbps).toBeGreaterThanOrEqual(0.8 * 20);
    expect(mbps).toBeLessThanOrEqual(20);
  }, 60_000);

  it('bad values are refused at apply, naming the annotation; removing it removes the limit', async () => {
    const bad = await lab().cli('apply', '-f', file('bad.yaml', manifest({ [EGRESS]: '10Mbit' })));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(`metadata.annotations[${EGRESS}]: "10Mbit" is not a quantity`);
    const ingress = await lab().cli('apply', '-f', file('ingress.yaml', manifest({ 'kubernetes.io/ingress-bandwidth': '10M' })));
    expect(ingress.code).not.toBe(0);
    expect(ingress.stderr).toContain('metadata.annotations[kubernetes.io/ingress-bandwidth]: is not supported');
    expect((await lab().cli('bpf', 'bandwidth', 'list')).stdout).toContain('   20M\n');

    const r = await lab().cli('apply', '-f', file('server-free.yaml', manifest(undefined)));
    expect(r.stdout).toBe('pod/netperf-server configured\n');
    const empty = await lab().cli('bpf', 'bandwidth', 'list');
    expect([empty.stdout, empty.stderr]).toEqual(['', 'No entries found.\n']);
    expect((await lab().netperf('netperf-server', 2)).mbps).toBeGreaterThan(10 * 20);
  }, 60_000);
});

describe.skipIf(!root)('bandwidth manager: the EDT horizon', () => {
  const lab = labWith(['--bpf-bandwidth-horizon', '1ms'], 'h-');

  it('packets due beyond a 1 ms horizon are dropped with 162 and counted', async () => {
    const before = await lab().dropCount('EDT');
    await lab().netperf('netperf-server', 2);
    expect(await lab().dropCount('EDT')).toBeGreaterThan(before);
    const metrics = await lab().cli('bpf', 'metrics', 'list');
    expect(metrics.stdout).toMatch(/Reached EDT rate-limiting drop horizon\s+EGRESS\s+\d+/);
  }, 60_000);
});
