// Pod → internet host TCP through BPF masquerade (the pod's TUN, bpf_lxc SNAT, the node's stack, the
// router; replies steered into cilium_host and rev-SNATed), against a kernel path on the same node:
// a veth "pod" in its own namespace, forwarded by the node's stack and SNATed by iptables MASQUERADE.
import type { Lab } from '../../test/helpers/lab.ts';
import { netns, round, sh, tcpGbpsOnce } from '../lib.ts';
import { paired } from '../paired.ts';

const KERNEL_POD_NET = '10.250.0';

export async function benchMasquerade(lab: Lab): Promise<Record<string, number>> {
  const pod = lab.pod('masq');
  await lab.ok('k8s-ctr', 'run', pod, '--labels', 'app=bench-masq');
  const podNs = `cil-k8s-ctr-default-${pod}`;
  const node = lab.ns('k8s-ctr');
  // The kernel baseline: the same node, router and internet host; only the pod's path differs.
  const kpod = netns('kmasq');
  sh('ip', 'link', 'add', 'eth0', 'netns', kpod, 'type', 'veth', 'peer', 'name', 'kmasq0', 'netns', node);
  sh('ip', '-n', node, 'addr', 'add', `${KERNEL_POD_NET}.1/30`, 'dev', 'kmasq0');
  sh('ip', '-n', node, 'link', 'set', 'kmasq0', 'up');
  sh('ip', '-n', kpod, 'addr', 'add', `${KERNEL_POD_NET}.2/30`, 'dev', 'eth0');
  sh('ip', '-n', kpod, 'link', 'set', 'eth0', 'up');
  sh('ip', '-n', kpod, 'route', 'add', 'default', 'via', `${KERNEL_POD_NET}.1`);
  sh('ip', 'netns', 'exec', node, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', `${KERNEL_POD_NET}.0/30`, '-o', 'eth1', '-j', 'MASQUERADE');
  const r = await paired(() => tcpGbpsOnce(podNs, lab.ns('internet'), lab.internetIP), () => tcpGbpsOnce(kpod, lab.ns('internet'), lab.internetIP));
  await lab.ok('k8s-ctr', 'delete', 'pod', pod);
  return {
    northsouth_masquerade_tcp_gbps: round(r.ours),
    northsouth_kernel_masquerade_tcp_gbps: round(r.baseline),
    ratio_masquerade_vs_kernel_tcp: round(r.ratio),
  };
}
