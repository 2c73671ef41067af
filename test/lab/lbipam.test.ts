// Seed 002 on three real agents over etcd: a CiliumLoadBalancerIPPool 10.10.200.0/29 with
// allowFirstLastIPs "No", three LoadBalancer services getting .1 .2 .3, a CiliumL2AnnouncementPolicy
// (workers only, ^eth[0-9]+) with leases of 3 s / 1 s / 200 ms. An outside client on the lab bridge,
// with the pool on-link, ARPs an address and gets the lease holder's MAC; SIGKILL of the holder's
// agent moves the lease to the other worker, whose gratuitous ARP changes the client's neighbour
// entry; deleting a service frees its address and stops the answers.
// Names carry a per-run prefix and net, state lives in a temp dir: another lab on this machine is safe.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { makeNetns, removeNetns, requireRoot, run, sh } from '../helpers/sys.ts';
import { HTTP_SERVER, Lab, type NodeName, until as untilIn } from '../helpers/lab.ts';

const root = requireRoot();
const POOL = '10.10.200.0/29';
const L2_ARGS = '--enable-l2-announcements --l2announcements-lease-duration=3s --l2announcements-renew-deadline=1s --l2announcements-retry-period=200ms';
const lab = root ? new Lab('l', [`CILIARY_AGENT_ARGS=${L2_ARGS}`]) : (undefined as unknown as Lab);
/** Lease moves and ARP answers are waited for longer than the lab's default. */
const until = <T>(what: string, probe: () => Promise<T | undefined>) => untilIn(what, probe, 30_000);

const eth1Mac = (node: NodeName) => (JSON.parse(sh('ip', ['-n', lab.ns(node), '-j', 'link', 'show', 'eth1'])) as Array<{ address: string }>)[0].address;

/** Column cells of a table line, split on runs of two or more spaces. */
const cells = (out: string, name: string) => out.split('\n').find((l) => l.startsWith(`${name} `))?.split(/ {2,}/);

const manifests = `
apiVersion: "cilium.io/v2alpha1"
kind: CiliumL2AnnouncementPolicy
metadata:
  name: policy1
spec:
  serviceSelector:
    matchLabels:
      color: blue
  nodeSelector:
    matchExpressions:
      - key: node-role.kubernetes.io/control-plane
        operator: DoesNotExist
  interfaces:
    - ^eth[0-9]+
  externalIPs: true
  loadBalancerIPs: true
---
apiVersion: "cilium.io/v2alpha1"
kind: CiliumLoadBalancerIPPool
metadata:
  name: "cilium-pool"
spec:
  allowFirstLastIPs: "No"
  blocks:
    - cidr: "${POOL}"
${[1, 2, 3, 4].map((i) => `---
apiVersion: v1
kind: Service
metadata:
  name: svc${i}
${i < 4 ? '  labels:\n    color: blue\n' : ''}spec:
  type: LoadBalancer
  ports:
    - port: 80
      targetPort: 80
      protocol: TCP
  selector:
    app: webpod
`).join('')}`;

describe.skipIf(!root)('LB-IPAM and L2 announcements on three nodes (seed 002)', () => {
  let client = '';
  let file = '';

  beforeAll(async () => {
    await lab.up(3);
    // The outside client (the seeds' testpc) on the node network, the pool on-link.
    client = makeNetns('lbc');
    sh('ip', ['link', 'add', `${lab.tag}c`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client]);
    sh('ip', ['link', 'set', `${lab.tag}c`, 'master', lab.bridge, 'up']);
    sh('ip', ['-n', client, 'addr', 'add', `${lab.net}.50/24`, 'dev', 'eth0']);
    sh('ip', ['-n', client, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', client, 'route', 'add', POOL, 'dev', 'eth0']);
    file = lab.file('seed-002.yaml', manifests);
    await lab.ok('k8s-ctr', 'apply', '-f', file);
  }, 300_000);

  afterAll(async () => {
    if (!root) return;
    if (client) removeNetns(client);
    await lab.down();
  }, 120_000);

  const leases = async () => {
    const out = await lab.ok('k8s-ctr', 'get', 'leases', '-n', 'kube-system');
    return new Map(out.split('\n').slice(1).filter(Boolean).map((l) => l.split(/ {2,}/)).map(([name, holder]) => [name, holder]));
  };
  /** The MACs that answer an ARP request from the client (asynchronously: the agents' API connections stay served). */
  const arping = async (ip: string) => {
    const out = (await run('ip', ['netns', 'exec', client, 'arping', '-c', '1', '-w', '2', '-I', 'eth0', ip], 10_000)).stdout;
    return [...out.matchAll(/reply from \S+ \[([0-9A-F:]+)\]/g)].map((m) => m[1].toLowerCase());
  };
  const neighbour = (ip: string) => /lladdr (\S+)/.exec(sh('ip', ['-n', client, 'neigh', 'show', ip, 'dev', 'eth0']))?.[1];

  it('the three services get .1 .2 .3 in order; get ippools and get svc show it', async () => {
    const out = await until('EXTERNAL-IP of svc1..svc4', async () => {
      const svc = await lab.ok('k8s-w1', 'get', 'svc');
      return [1, 2, 3, 4].every((i) => cells(svc, `svc${i}`)?.[3]?.startsWith('10.10.200.')) ? svc : undefined;
    });
    expect([1, 2, 3, 4].map((i) => cells(out, `svc${i}`)!.slice(1, 5))).toEqual([
      ['LoadBalancer', expect.stringMatching(/^10\.96\./), '10.10.200.1', expect.stringMatching(/^80(:\d+)?\/TCP$/)],
      ['LoadBalancer', expect.stringMatching(/^10\.96\./), '10.10.200.2', expect.stringMatching(/^80(:\d+)?\/TCP$/)],
      ['LoadBalancer', expect.stringMatching(/^10\.96\./), '10.10.200.3', expect.stringMatching(/^80(:\d+)?\/TCP$/)],
      ['LoadBalancer', expect.stringMatching(/^10\.96\./), '10.10.200.4', expect.stringMatching(/^80(:\d+)?\/TCP$/)],
    ]);
    const pools = await lab.ok('k8s-w2', 'get', 'ippools');
    expect(pools.split('\n')[0]).toMatch(/^NAME +DISABLED +CONFLICTING +IPS AVAILABLE +AGE$/);
    expect(cells(pools, 'cilium-pool')?.slice(0, 4)).toEqual(['cilium-pool', 'false', 'False', '2']);
  });

  it('one worker holds each labelled service\'s lease; the unlabelled svc4 is not announced', async () => {
    const held = await until('three leases', async () => {
      const l = await leases();
      return l.size === 3 ? l : undefined;
    });
    expect([...held.keys()].sort()).toEqual(['cilium-l2announce-default-svc1', 'cilium-l2announce-default-svc2', 'cilium-l2announce-default-svc3']);
    for (const holder of held.values()) expect(['k8s-w1', 'k8s-w2']).toContain(holder);
    expect((await lab.ok('k8s-ctr', 'get', 'leases', '-n', 'kube-system')).split('\n')[0]).toMatch(/^NAME +HOLDER +AGE$/);
    expect(await arping('10.10.200.4')).toEqual([]);
  });

  it('the outside client ARPs 10.10.200.1 and gets the holder\'s MAC; SIGKILL of its agent moves the lease and the MAC', async () => {
    const holder = (await leases()).get('cilium-l2announce-default-svc1') as NodeName;
    const other = holder === 'k8s-w1' ? 'k8s-w2' : 'k8s-w1';
    expect(await until('an ARP answer for .1', async () => {
      const macs = await arping('10.10.200.1');
      return macs.length ? macs : undefined;
    })).toEqual([eth1Mac(holder)]);
    // The client's kernel resolves the address (the ping itself needs the LoadBalancer frontend).
    await run('ip', ['netns', 'exec', client, 'ping', '-c', '1', '-W', '1', '10.10.200.1'], 10_000);
    expect(neighbour('10.10.200.1')).toBe(eth1Mac(holder));

    const pid = String(lab.agentPid(holder));
    const killed = Date.now();
    sh('kill', ['-KILL', pid]);
    await until('the lease on the other worker', async () => ((await leases()).get('cilium-l2announce-default-svc1') === other ? true : undefined));
    const moved = Date.now() - killed;
    // The gratuitous ARP of the new holder replaces the MAC in the client's cache.
    await until('the new MAC in the client\'s neighbour entry', async () => (neighbour('10.10.200.1') === eth1Mac(other) ? true : undefined));
    console.log(`lease moved ${moved} ms after SIGKILL of ${holder}'s agent (lease duration 3 s)`);
    // The dead agent's node answers no more (its cilium_host lost carrier): one MAC, the new holder's.
    expect(await arping('10.10.200.1')).toEqual([eth1Mac(other)]);
    // The restarted agent removes the entries its killed predecessor left, and the holder stays.
    const up = await lab.script('up', '3');
    expect(up.code, up.stderr).toBe(0);
    await until('the stale proxy entry gone', async () => (sh('ip', ['-n', lab.ns(holder), 'neigh', 'show', 'proxy']).includes('10.10.200.1') ? undefined : true));
    expect(await arping('10.10.200.1')).toEqual([eth1Mac(other)]);
    expect((await leases()).get('cilium-l2announce-default-svc1')).toBe(other);
  });

  it('deleting a service frees its address and ends its lease and answers', async () => {
    await lab.ok('k8s-w1', 'delete', 'svc', 'svc2');
    await until('svc2\'s lease gone', async () => (!(await leases()).has('cilium-l2announce-default-svc2') ? true : undefined));
    await until('no answer for .2', async () => ((await arping('10.10.200.2')).length === 0 ? true : undefined));
    expect(cells(await lab.ok('k8s-ctr', 'get', 'ippools'), 'cilium-pool')?.[3]).toBe('3');
    await lab.ok('k8s-ctr', 'apply', '-f', file);
    await until('svc2 given the lowest free address again', async () => (cells(await lab.ok('k8s-ctr', 'get', 'svc'), 'svc2')?.[3] === '10.10.200.2' ? true : undefined));
  });

  it('curl from the outside client to 10.10.200.1 reaches both webpods: the holder\'s sees the client, the other the holder (SNAT)', async () => {
    for (const node of ['k8s-w1', 'k8s-w2'] as const) await lab.ok(node, 'run', lab.pod(`web-${node}`), '--labels', 'app=webpod', '--', ...HTTP_SERVER);
    const holder = (await leases()).get('cilium-l2announce-default-svc1')!;
    const holderIP = lab.nodeIP(holder === 'k8s-w1' ? 1 : 2);
    const seen = new Map<string, string>();
    await untilIn('both webpods answering 10.10.200.1', async () => {
      const [host, remote] = (await run('ip', ['netns', 'exec', client, 'curl', '-s', '--max-time', '2', 'http://10.10.200.1/'], 10_000)).stdout.trim().split(' ');
      if (remote) seen.set(host, remote);
      return seen.size === 2 ? true : undefined;
    }, 60_000);
    const other = holder === 'k8s-w1' ? 'k8s-w2' : 'k8s-w1';
    expect(Object.fromEntries(seen)).toEqual({ [lab.pod(`web-${holder}`)]: `${lab.net}.50`, [lab.pod(`web-${other}`)]: holderIP });
    for (const node of ['k8s-w1', 'k8s-w2'] as const) await lab.ok(node, 'delete', 'pod', lab.pod(`web-${node}`));
  });
});
