// Three real agents over a real etcd (scripts/netns/cluster.sh up 3), native routing: the node
// registry, pod CIDRs from the cluster pool, the ipcache across nodes, pod to pod and service
// traffic between nodes with the client's address kept, policy enforced on the destination node,
// the to-network / to-endpoint flow pair, and a stopped node leaving the others' state.
// The cases both routing modes share are in test/helpers/cross-node-cases.ts; native routing's own here.
// Names carry a per-run prefix and net, state lives in a temp dir: another lab on this machine is safe.
import { expect, it } from 'vitest';
import { run, sh } from '../helpers/sys.ts';
import { Lab, until } from '../helpers/lab.ts';
import { crossNodeSuite } from '../helpers/cross-node-cases.ts';

crossNodeSuite('native', 'm', 'three nodes over etcd, native routing', ({ lab, pod, ip }) => {
  const nodeIP = (i: number) => lab.nodeIP(i);
  const routes = (node: 'k8s-ctr' | 'k8s-w1') => lab.routes(node);

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

  it('another node\'s own traffic to a pod arrives with its identity (k8s-ctr serves the API: kube-apiserver, as Cilium\'s 7); the local host\'s as host', async () => {
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
    expect(flows).toMatch(new RegExp(`${nodeIP(0).replace(/\./g, '\\.')}:\\d+ \\(kube-apiserver\\) -> default/${pod('web1')}:80 \\(ID:\\d+\\) to-endpoint FORWARDED`));
    expect(flows).toMatch(new RegExp(`\\(host\\) -> default/${pod('web1')}:80 \\(ID:\\d+\\) to-endpoint FORWARDED`));
  });

  it('ingress fromEntities remote-node on w1: the k8s-ctr node gets in (kube-apiserver is a remote node too), the k8s-ctr pod is denied (Policy denied)', async () => {
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
