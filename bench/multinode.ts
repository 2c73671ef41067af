// Across nodes: pod → pod TCP between two nodes of a real lab (scripts/netns/cluster.sh up 2 over
// etcd) in native routing against two kernel namespaces routed over a bridge of their own, in VXLAN
// tunnel mode against two kernel vxlan devices over such a bridge (and again with enable-tunnel-gso=false:
// super-packets cut by the agent instead of the kernel's UDP-tunnel GSO), and pod → pod on one node against
// a veth pair — each pair measured in the same run, taking turns, so the machine's load hits both.
import { loadavg } from 'node:os';
import { Lab } from '../test/helpers/lab.ts';
import { DURATION, REPEAT, netns, round, sh, tcpGbps, vethPair } from './lib.ts';
import { paired } from './paired.ts';

const VXLAN_ID = '42';
const VXLAN_PORT = '8472';
/** The lab's pod MTU in tunnel mode; the kernel vxlan baseline gets the same. */
const TUNNEL_MTU = '1450';

/** Two namespaces with a veth each on a fresh bridge, addressed 10.205.0.1 and .2 (no address in the root namespace). */
function bridged(tag: string): { a: string; b: string; ipA: string; ipB: string; close(): void } {
  const br = `cilbbr${process.pid % 100000}${tag}`.slice(0, 15);
  sh('ip', 'link', 'add', br, 'type', 'bridge');
  sh('ip', 'link', 'set', br, 'up');
  const ends: string[] = [];
  const ns = [netns(`${tag}a`), netns(`${tag}b`)];
  ns.forEach((n, i) => {
    const host = `${br.slice(0, 12)}v${i}`;
    sh('ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', n);
    sh('ip', 'link', 'set', host, 'master', br, 'up');
    sh('ip', '-n', n, 'addr', 'add', `10.205.0.${i + 1}/24`, 'dev', 'eth1');
    sh('ip', '-n', n, 'link', 'set', 'eth1', 'up');
    ends.push(host);
  });
  return {
    a: ns[0], b: ns[1], ipA: '10.205.0.1', ipB: '10.205.0.2',
    close() {
      for (const e of ends) try { sh('ip', 'link', 'del', e); } catch { /* went with its namespace */ }
      sh('ip', 'link', 'del', br);
    },
  };
}

/** Kernel VXLAN between two bridged namespaces: vxlan0 on each (same VNI, port and MTU as the lab), 10.206.0.1 → .2 inside. */
function vxlanPair(): { a: string; b: string; inner: string; close(): void } {
  const n = bridged('x');
  [[n.a, n.ipA, n.ipB, '1'], [n.b, n.ipB, n.ipA, '2']].forEach(([ns, local, remote, host]) => {
    sh('ip', '-n', ns, 'link', 'add', 'vxlan0', 'type', 'vxlan', 'id', VXLAN_ID, 'local', local, 'remote', remote, 'dstport', VXLAN_PORT, 'dev', 'eth1');
    sh('ip', '-n', ns, 'link', 'set', 'vxlan0', 'mtu', TUNNEL_MTU, 'up');
    sh('ip', '-n', ns, 'addr', 'add', `10.206.0.${host}/24`, 'dev', 'vxlan0');
  });
  return { a: n.a, b: n.b, inner: '10.206.0.2', close: n.close };
}

/** One lab with a client and a server pod on k8s-ctr and k8s-w1 (and a same-node server on k8s-ctr); removed after `use`. */
async function withLab<T>(mode: 'native' | 'tunnel', use: (l: Lab, ns: { client: string; remote: string; remoteIP: string; local: string; localIP: string }) => Promise<T>): Promise<T> {
  // The routing mode in the environment too: an agent restarted with other arguments keeps it.
  const lab = new Lab(mode === 'native' ? 'bn' : 'bt', [`CILIARY_ROUTING_MODE=${mode}`]);
  try {
    await lab.up(2, '--routing-mode', mode);
    await lab.ok('k8s-ctr', 'run', lab.pod('client'), '--labels', 'app=bench-client');
    await lab.ok('k8s-w1', 'run', lab.pod('remote'), '--labels', 'app=bench-server');
    await lab.ok('k8s-ctr', 'run', lab.pod('local'), '--labels', 'app=bench-server');
    return await use(lab, {
      client: lab.podNs('k8s-ctr', lab.pod('client')),
      remote: lab.podNs('k8s-w1', lab.pod('remote')), remoteIP: await lab.podIP('k8s-w1', lab.pod('remote')),
      local: lab.podNs('k8s-ctr', lab.pod('local')), localIP: await lab.podIP('k8s-ctr', lab.pod('local')),
    });
  } finally {
    await lab.down();
  }
}

export async function benchMultinode(): Promise<Record<string, number>> {
  // The machine is shared: its load says how far these numbers can be trusted.
  const out: Record<string, number> = { load_avg_1m_at_start: loadavg()[0] };
  const routed = bridged('n');
  const vx = vxlanPair();
  const veth = vethPair();
  try {
    await withLab('native', async (_lab, p) => {
      const routedPair = await paired(() => tcpGbps(p.client, p.remote, p.remoteIP, 1), () => tcpGbps(routed.a, routed.b, routed.ipB, 1), 'cross-node/routed Gbit/s');
      out.kernel_routed_tcp_gbps = round(routedPair.baseline);
      out.native_cross_node_tcp_gbps = round(routedPair.ours);
      const sameNode = await paired(() => tcpGbps(p.client, p.local, p.localIP, 1), () => tcpGbps(veth.a, veth.b, undefined, 1), 'same-node/veth Gbit/s');
      out.kernel_veth_tcp_gbps = round(sameNode.baseline);
      out.same_node_tcp_gbps = round(sameNode.ours);
      out.ratio_native_cross_node_vs_kernel = round(routedPair.ratio);
      out.ratio_same_node_vs_veth = round(sameNode.ratio);
    });
    await withLab('tunnel', async (lab, p) => {
      const tunnelPair = await paired(() => tcpGbps(p.client, p.remote, p.remoteIP, 1), () => tcpGbps(vx.a, vx.b, vx.inner, 1), 'tunnel/vxlan Gbit/s');
      out.kernel_vxlan_tcp_gbps = round(tunnelPair.baseline);
      out.tunnel_cross_node_tcp_gbps = round(tunnelPair.ours);
      out.ratio_tunnel_cross_node_vs_kernel_vxlan = round(tunnelPair.ratio);
      // The same pods with super-packets cut by the agent (no cilium_vxlan): what the kernel's UDP-tunnel GSO buys.
      for (const node of ['k8s-ctr', 'k8s-w1'] as const) await lab.restartAgent(node, 2, '--enable-tunnel-gso=false');
      const cutPair = await paired(() => tcpGbps(p.client, p.remote, p.remoteIP, 1), () => tcpGbps(vx.a, vx.b, vx.inner, 1), 'tunnel agent-segmented/vxlan Gbit/s');
      out.tunnel_agent_segmented_tcp_gbps = round(cutPair.ours);
      out.ratio_tunnel_agent_segmented_vs_kernel_vxlan = round(cutPair.ratio);
    });
  } finally {
    routed.close();
    vx.close();
  }
  out.load_avg_1m_at_end = loadavg()[0];
  out.bench_seconds_per_run = DURATION;
  out.bench_repeat = REPEAT;
  return out;
}
