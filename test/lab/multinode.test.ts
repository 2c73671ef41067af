// Three real agents over a real etcd (scripts/netns/cluster.sh up 3), native routing: the node
// registry, pod CIDRs from the cluster pool, the ipcache across nodes, pod to pod and service
// traffic between nodes with the client's address kept, policy enforced on the destination node,
// the to-network / to-endpoint flow pair, and a stopped node leaving the others' state.
// Names carry a per-run prefix and net, state lives in a temp dir: another lab on this machine is safe.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { requireRoot, run, sh } from '../helpers/sys.ts';
import { HTTP_SERVER, Lab, until } from '../helpers/lab.ts';

const root = requireRoot();
const lab = root ? new Lab('m') : (undefined as unknown as Lab);
const pod = (name: string) => lab.pod(name);
const nodeIP = (i: number) => lab.nodeIP(i);
const routes = (node: 'k8s-ctr' | 'k8s-w1') => lab.routes(node);

describe.skipIf(!root)('three nodes over etcd, native routing', () => {
  const ip: Record<string, string> = {};

  beforeAll(async () => {
    await lab.up(3);
    ip.web1 = await lab.runPod('k8s-w1', pod('web1'), 'app=web1', HTTP_SERVER);
    ip.web2 = await lab.runPod('k8s-w2', pod('web2'), 'app=web2', HTTP_SERVER);
    ip.client = await lab.runPod('k8s-ctr', pod('client'), 'app=client');
    // Same labels as web1 on another node: the identity must be the same number.
    ip.twin = await lab.runPod('k8s-w2', pod('twin'), 'app=web1');
  }, 300_000);

  afterAll(async () => {
    if (root) await lab.down();
  }, 120_000);

  it('node list shows three nodes with pod CIDRs from the cluster pool in join order; get nodes the control-plane role', async () => {
    const w = Math.max('IPv4 Address'.length, nodeIP(0).length) + 3;
    const widths = [10, w, 16, 15, 16];
    const row = (...cells: string[]) => cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i]) : c)).join('').trimEnd();
    expect((await lab.ok('k8s-w1', 'node', 'list')).trimEnd().split('\n')).toEqual([
      row('Name', 'IPv4 Address', 'Endpoint CIDR', 'IPv6 Address', 'Endpoint CIDR', 'Source'),
      row('k8s-ctr', nodeIP(0), '172.20.0.0/24', '', '', 'kvstore'),
      row('k8s-w1', nodeIP(1), '172.20.1.0/24', '', '', 'local'),
      row('k8s-w2', nodeIP(2), '172.20.2.0/24', '', '', 'kvstore'),
    ]);
    const nodes = (await lab.ok('k8s-ctr', 'get', 'nodes', '-o', 'wide')).trimEnd().split('\n');
    expect(nodes[0]).toMatch(/^NAME +STATUS +ROLES +AGE +VERSION +INTERNAL-IP +EXTERNAL-IP +OS-IMAGE +KERNEL-VERSION +CONTAINER-RUNTIME$/);
    expect(nodes.slice(1).map((l) => l.split(/ {2,}/).slice(0, 3).concat(l.split(/ +/)[5]))).toEqual([
      ['k8s-ctr', 'Ready', 'control-plane', nodeIP(0)],
      ['k8s-w1', 'Ready', '<none>', nodeIP(1)],
      ['k8s-w2', 'Ready', '<none>', nodeIP(2)],
    ]);
  });

  it('status prints Routing: Network: Native when routes to the other nodes are installed', async () => {
    expect(await lab.ok('k8s-ctr', 'status')).toMatch(/^Routing: +Network: Native {3}Host: BPF$/m);
    expect(routes('k8s-ctr')).toContain(`172.20.1.0/24 via ${nodeIP(1)} dev eth1`);
    expect(routes('k8s-ctr')).toContain(`172.20.2.0/24 via ${nodeIP(2)} dev eth1`);
    expect(routes('k8s-w1')).toContain(`172.20.0.0/24 via ${nodeIP(0)} dev eth1`);
  });

  it('bpf ipcache list on k8s-ctr: remote pods with their identity behind their node IP, node IPs remote-node', async () => {
    const w1Identity = /identity=(\d+)/.exec((await lab.ok('k8s-w1', 'bpf', 'ipcache', 'list')).split('\n').find((l) => l.startsWith(`${ip.web1}/32 `)) ?? '')?.[1];
    expect(Number(w1Identity)).toBeGreaterThanOrEqual(256);
    const list = await until('w1 and w2 pods in the ipcache of k8s-ctr', async () => {
      const out = await lab.ok('k8s-ctr', 'bpf', 'ipcache', 'list');
      return out.includes(`${ip.web2}/32`) && out.includes(`${ip.twin}/32`) ? out : undefined;
    });
    const entry = (prefixText: string) => Lab.ipcacheEntry(list, prefixText);
    expect(entry(`${ip.web1}/32`)).toBe(`identity=${w1Identity} encryptkey=0 tunnelendpoint=${nodeIP(1)}`);
    // Same labels, another node: the same cluster-wide identity.
    expect(entry(`${ip.twin}/32`)).toBe(`identity=${w1Identity} encryptkey=0 tunnelendpoint=${nodeIP(2)}`);
    expect(entry(`${ip.client}/32`)).toMatch(/^identity=\d+ encryptkey=0 tunnelendpoint=0\.0\.0\.0$/);
    expect(entry(`${nodeIP(1)}/32`)).toBe('identity=6 encryptkey=0 tunnelendpoint=0.0.0.0');
    expect(entry(`${nodeIP(2)}/32`)).toBe('identity=6 encryptkey=0 tunnelendpoint=0.0.0.0');
    expect(entry(`${nodeIP(0)}/32`)).toBe('identity=1 encryptkey=0 tunnelendpoint=0.0.0.0');
  });

  it('a pod on k8s-ctr reaches the pods on w1 and w2 by IP, and the servers see the client pod\'s address', async () => {
    expect(await until('web1 answering', () => lab.curl('k8s-ctr', pod('client'), `http://${ip.web1}/`))).toBe(`${pod('web1')} ${ip.client}\n`);
    expect(await until('web2 answering', () => lab.curl('k8s-ctr', pod('client'), `http://${ip.web2}/`))).toBe(`${pod('web2')} ${ip.client}\n`);
    const ping = await lab.exec('k8s-ctr', pod('client'), ['ping', '-c', '2', '-W', '2', ip.twin]);
    expect(ping.stdout).toContain('2 packets transmitted, 2 received');
  });

  it('Hubble: to-network on the sending node, to-endpoint on the receiving node', async () => {
    await until('web1 answering', () => lab.curl('k8s-ctr', pod('client'), `http://${ip.web1}/`));
    const line = (dir: string, point: string) => new RegExp(`default/${pod('client')}:\\d+ \\(ID:\\d+\\) ${dir} default/${pod('web1')}:80 \\(ID:\\d+\\) ${point} FORWARDED \\(TCP Flags: SYN\\)`);
    const sender = await until('the to-network flow on k8s-ctr', async () => {
      const out = await lab.ok('k8s-ctr', 'observe', '--last', '200');
      return line('->', 'to-network').test(out) ? out : undefined;
    });
    expect(sender).not.toMatch(line('->', 'to-stack'));
    const receiver = await until('the to-endpoint flow on k8s-w1', async () => {
      const out = await lab.ok('k8s-w1', 'observe', '--last', '200');
      return line('->', 'to-endpoint').test(out) ? out : undefined;
    });
    // The reply leaves w1 to the network too.
    expect(receiver).toMatch(new RegExp(`default/${pod('client')}:\\d+ \\(ID:\\d+\\) <- default/${pod('web1')}:80 \\(ID:\\d+\\) to-network FORWARDED \\(TCP Flags: SYN, ACK\\)`));
  });

  it('a ClusterIP service whose only backend is on w2 works from pods on k8s-ctr and w1 (reverse NAT on the client\'s node)', async () => {
    const file = lab.file('svc.yaml', `apiVersion: v1\nkind: Service\nmetadata: {name: ${pod('web2')}}\nspec:\n  selector: {app: web2}\n  ports: [{port: 80, targetPort: 80}]\n`);
    await lab.ok('k8s-ctr', 'apply', '-f', file);
    const svcLine = (await lab.ok('k8s-ctr', 'get', 'svc', pod('web2'))).split('\n')[1];
    const clusterIP = svcLine.split(/\s+/)[2];
    expect(await lab.ok('k8s-ctr', 'service', 'list')).toMatch(new RegExp(`${clusterIP.replace(/\./g, '\\.')}:80 +ClusterIP +1 => ${ip.web2}:80`));
    expect(await until('the service answering', () => lab.curl('k8s-ctr', pod('client'), `http://${clusterIP}/`))).toBe(`${pod('web2')} ${ip.client}\n`);
    expect(await lab.ok('k8s-ctr', 'bpf', 'ct', 'list', 'global')).toMatch(new RegExp(`TCP OUT ${clusterIP.replace(/\./g, '\\.')}:80 -> ${ip.client.replace(/\./g, '\\.')}:\\d+ service `));
    // Applied on k8s-ctr, followed by the other agents: from w1 too, to the backend on w2.
    expect(await until('the service answering on w1', () => lab.curl('k8s-w1', pod('web1'), `http://${clusterIP}/`))).toBe(`${pod('web2')} ${ip.web1}\n`);
  });

  it('a policy on w1 denying ingress from the k8s-ctr pod\'s labels drops there with Policy denied', async () => {
    const file = lab.file('deny.yaml', [
      'apiVersion: cilium.io/v2', 'kind: CiliumNetworkPolicy', `metadata: {name: ${pod('deny-client')}}`, 'spec:',
      '  endpointSelector: {matchLabels: {app: web1}}', '  ingressDeny:', '  - fromEndpoints:', '    - matchLabels: {app: client}', '',
    ].join('\n'));
    await lab.ok('k8s-w1', 'apply', '-f', file);
    try {
      const r = await lab.exec('k8s-ctr', pod('client'), ['curl', '-s', '--max-time', '2', `http://${ip.web1}/`]);
      expect(r.code).not.toBe(0);
      const drops = await until('the drop on w1', async () => {
        const out = await lab.ok('k8s-w1', 'observe', '--last', '50', '--verdict', 'DROPPED');
        return out.includes(`${pod('web1')}:80`) ? out : undefined;
      });
      expect(drops).toMatch(new RegExp(`default/${pod('client')}:\\d+ \\(ID:\\d+\\) <> default/${pod('web1')}:80 \\(ID:\\d+\\) Policy denied by denylist DROPPED`));
      // web2 on the other worker is not selected by it.
      expect(await lab.curl('k8s-ctr', pod('client'), `http://${ip.web2}/`)).toBe(`${pod('web2')} ${ip.client}\n`);
    } finally {
      await lab.ok('k8s-w1', 'delete', '-f', file);
    }
  });

  it('another node\'s own traffic to a pod arrives as remote-node; the local host\'s as host', async () => {
    const fromNode = async (i: number) => {
      const r = await run('ip', ['netns', 'exec', lab.ns((['k8s-ctr', 'k8s-w1'] as const)[i]), 'curl', '-s', '--max-time', '2', `http://${ip.web1}/`]);
      return r.code === 0 ? r.stdout : undefined;
    };
    expect(await until('web1 from the k8s-ctr node', () => fromNode(0))).toBe(`${pod('web1')} ${nodeIP(0)}\n`);
    expect(await until('web1 from its own node', () => fromNode(1))).toMatch(new RegExp(`^${pod('web1')} `));
    const flows = await until('both flows on w1', async () => {
      const out = await lab.ok('k8s-w1', 'observe', '--last', '100');
      return out.includes(`${nodeIP(0)}:`) && /\(host\) -> /.test(out) ? out : undefined;
    });
    expect(flows).toMatch(new RegExp(`${nodeIP(0).replace(/\./g, '\\.')}:\\d+ \\(remote-node\\) -> default/${pod('web1')}:80 \\(ID:\\d+\\) to-endpoint FORWARDED`));
    expect(flows).toMatch(new RegExp(`\\(host\\) -> default/${pod('web1')}:80 \\(ID:\\d+\\) to-endpoint FORWARDED`));
  });

  it('ingress fromEntities remote-node on w1: the k8s-ctr node gets in, the k8s-ctr pod is denied (Policy denied)', async () => {
    const file = lab.file('remote-node.yaml', [
      'apiVersion: cilium.io/v2', 'kind: CiliumNetworkPolicy', `metadata: {name: ${pod('from-nodes')}}`, 'spec:',
      '  endpointSelector: {matchLabels: {app: web1}}', '  ingress:', '  - fromEntities: [remote-node]', '',
    ].join('\n'));
    await lab.ok('k8s-w1', 'apply', '-f', file);
    try {
      const fromCtrNode = await run('ip', ['netns', 'exec', lab.ns('k8s-ctr'), 'curl', '-s', '--max-time', '2', `http://${ip.web1}/`]);
      expect(fromCtrNode.stdout).toBe(`${pod('web1')} ${nodeIP(0)}\n`);
      expect((await lab.exec('k8s-ctr', pod('client'), ['curl', '-s', '--max-time', '2', `http://${ip.web1}/`])).code).not.toBe(0);
      const drops = await until('the drop on w1', async () => {
        const out = await lab.ok('k8s-w1', 'observe', '--last', '20', '--verdict', 'DROPPED');
        return /Policy denied DROPPED/.test(out) ? out : undefined;
      });
      expect(drops).toMatch(new RegExp(`default/${pod('client')}:\\d+ \\(ID:\\d+\\) <> default/${pod('web1')}:80 \\(ID:\\d+\\) Policy denied DROPPED`));
    } finally {
      await lab.ok('k8s-w1', 'delete', '-f', file);
    }
  });

  it('a restarted agent keeps its pod CIDR and drops the routes to nodes that left while it was down', async () => {
    const pid = String(lab.agentPid('k8s-ctr'));
    sh('kill', ['-TERM', pid]);
    await until('the k8s-ctr agent gone', async () => (sh('ps', ['-o', 'stat=', '-p', pid], { allowFail: true }).trim().replace('Z', '') === '' ? true : undefined));
    // A node that left while no agent watched: its route stays behind in the kernel.
    sh('ip', ['-n', lab.ns('k8s-ctr'), 'route', 'add', '172.20.9.0/24', 'via', nodeIP(1), 'proto', '199']);
    const up = await lab.script('up', '3');
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toContain('already running');
    await until('the stale route pruned', async () => (routes('k8s-ctr').includes('172.20.9.0/24') ? undefined : true));
    expect(routes('k8s-ctr')).toContain(`172.20.1.0/24 via ${nodeIP(1)} dev eth1`);
    expect((await lab.ok('k8s-w1', 'node', 'list')).split('\n').find((l) => l.startsWith('k8s-ctr '))).toContain('172.20.0.0/24');
    expect(await until('web1 from the client after the restart', () => lab.curl('k8s-ctr', pod('client'), `http://${ip.web1}/`))).toBe(`${pod('web1')} ${ip.client}\n`);
  });

  it('a stopped agent: its node, ipcache entries and routes are gone from the others within 10 s', async () => {
    const pid = String(lab.agentPid('k8s-w2'));
    sh('kill', ['-TERM', pid]);
    const started = Date.now();
    await until('w2 gone from k8s-ctr and k8s-w1', async () => {
      const ctr = await lab.ok('k8s-ctr', 'bpf', 'ipcache', 'list');
      const w1 = await lab.ok('k8s-w1', 'bpf', 'ipcache', 'list');
      const gone = [ctr, w1].every((l) => !l.includes(`${ip.web2}/32`) && !l.includes(`${ip.twin}/32`) && !l.includes(`${nodeIP(2)}/32`))
        && !routes('k8s-ctr').includes('172.20.2.0/24') && !routes('k8s-w1').includes('172.20.2.0/24')
        && !(await lab.ok('k8s-ctr', 'node', 'list')).includes('k8s-w2');
      return gone ? true : undefined;
    }, 10_000);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The others still reach each other.
    expect(await lab.curl('k8s-ctr', pod('client'), `http://${ip.web1}/`)).toBe(`${pod('web1')} ${ip.client}\n`);
  });
});
