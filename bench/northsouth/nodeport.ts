// Outside client (testpc) → NodePort on k8s-ctr, which has no local backend → the iperf3 backend pod on
// k8s-w1, TCP: ciliary's NodePort DNAT + SNAT to the node IP in bpf_host, against a kube-proxy-style
// kernel path on the same nodes: iptables on k8s-ctr marks a hit on another port of its address
// (KUBE-MARK-MASQ), DNATs it to the same pod and MASQUERADEs marked packets.
import type { Lab } from '../../test/helpers/lab.ts';
import { DURATION, round, runAsync, sh } from '../lib.ts';
import { paired } from '../paired.ts';

const NODE_PORT = 30201;
const KERNEL_PORT = 40201; // outside the NodePort range: not steered, the kernel's own path
const IPERF_PORT = 5201;
const KUBE_MARK_MASQ = '0x4000/0x4000';

/** Gbit/s testpc sends to ip:port in one run (the pod's iperf3 -s serves runs one by one). */
async function gbps(client: string, ip: string, port: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      const out = await runAsync(['ip', 'netns', 'exec', client, 'iperf3', '-c', ip, '-p', String(port), '-t', String(DURATION), '-O', '1', '-J']);
      return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
    } catch (e) {
      if (attempt > 50) throw e; // the pod's server is still starting, or busy with the last run
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export async function benchNodePort(lab: Lab): Promise<Record<string, number>> {
  const server = lab.pod('iperf');
  await lab.ok('k8s-w1', 'run', server, '--labels', 'app=bench-nodeport', '--', 'iperf3', '-s', '-p', String(IPERF_PORT));
  const podIP = (await lab.ok('k8s-w1', 'get', 'pods', server, '-o', 'wide')).split('\n')[1].split(/\s+/)[5];
  await lab.ok('k8s-ctr', 'create', 'service', server, '--type', 'NodePort', '--selector', 'app=bench-nodeport', '--port', String(IPERF_PORT));
  await lab.ok('k8s-ctr', 'patch', 'svc', server, '-p', JSON.stringify({ spec: { ports: [{ port: IPERF_PORT, targetPort: IPERF_PORT, nodePort: NODE_PORT }] } }));
  const ctr = lab.nodeIP(0);
  const ipt = (...a: string[]) => sh('ip', 'netns', 'exec', lab.ns('k8s-ctr'), 'iptables', '-t', 'nat', ...a);
  ipt('-A', 'PREROUTING', '-d', ctr, '-p', 'tcp', '--dport', String(KERNEL_PORT), '-j', 'MARK', '--set-xmark', KUBE_MARK_MASQ);
  ipt('-A', 'PREROUTING', '-d', ctr, '-p', 'tcp', '--dport', String(KERNEL_PORT), '-j', 'DNAT', '--to-destination', `${podIP}:${IPERF_PORT}`);
  ipt('-A', 'POSTROUTING', '-m', 'mark', '--mark', KUBE_MARK_MASQ, '-j', 'MASQUERADE');
  const r = await paired(() => gbps(lab.ns('testpc'), ctr, NODE_PORT), () => gbps(lab.ns('testpc'), ctr, KERNEL_PORT));
  await lab.ok('k8s-ctr', 'delete', 'svc', server);
  await lab.ok('k8s-w1', 'delete', 'pod', server);
  return {
    northsouth_nodeport_remote_tcp_gbps: round(r.ours),
    northsouth_kernel_nodeport_remote_tcp_gbps: round(r.baseline),
    ratio_nodeport_vs_kernel_nodeport_tcp: round(r.ratio),
  };
}
