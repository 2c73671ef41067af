// North-south NodePort: an outside client on the node network → a NodePort on k8s-ctr, which has no
// local backend → the iperf3 backend pod on k8s-w1, TCP (ciliary's NodePort DNAT + SNAT to the node IP
// in bpf_host), against a kube-proxy-style kernel path built in the same run on the same topology:
// iptables DNAT of another port of k8s-ctr's address to the same pod, marked and MASQUERADEd.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main as cli } from '../../src/cli/main.ts';
import { attachOutsideClient, freeLabNet, LAB_NODES, steerNodePorts } from '../../test/helpers/outside-lab.ts';
import { DURATION, REPEAT, netns, round, runAsync, sh } from '../lib.ts';

const NODE_PORT = 30201;
const KERNEL_PORT = 40201; // outside the NodePort range: the kernel's own path
const IPERF_PORT = 5201;
const KUBE_MARK_MASQ = '0x4000/0x4000';

async function ciliary(sock: string, ...argv: string[]): Promise<string> {
  let out = '';
  let err = '';
  const code = await cli(['--socket', sock, ...argv], { out: (s) => (out += s), err: (s) => (err += s) }, {});
  if (code !== 0) throw new Error(`ciliary ${argv.join(' ')}: ${err}`);
  return out;
}

/** Gbit/s the outside client sends to ip:port, median of REPEAT runs (the backend's iperf3 -s serves them one by one). */
async function gbps(client: string, ip: string, port: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await runAsync(['ip', 'netns', 'exec', client, 'iperf3', '-c', ip, '-p', String(port), '-t', String(DURATION), '-J']);
        xs.push((JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9);
        break;
      } catch (e) {
        if (attempt > 50) throw e; // the pod's server is still starting, or busy with the last run
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  return xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

export async function benchNodePort(): Promise<Record<string, number>> {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const prefix = `b${process.pid % 10000}-`;
  const net = freeLabNet();
  const stateRoot = mkdtempSync(join(tmpdir(), 'ciliary-bench-np-'));
  const lab = (...args: string[]) => runAsync(['env', `CILIARY_LAB_PREFIX=${prefix}`, `CILIARY_LAB_NET=${net}`, join(repo, 'scripts/netns/cluster.sh'), '--state-root', stateRoot, ...args]);
  const nodeIP = (i: number) => `${net}.${100 + i}`;
  const ctr = join(stateRoot, 'k8s-ctr', 'agent.sock');
  const w1 = join(stateRoot, 'k8s-w1', 'agent.sock');
  try {
    await lab('up', '2');
    LAB_NODES.slice(0, 2).forEach((node, i) => steerNodePorts(prefix, node, nodeIP(i)));
    const client = netns('npc');
    attachOutsideClient(client, prefix, `${prefix}oc`, `${net}.50`);
    await ciliary(w1, 'run', 'iperf-server', '--labels', 'app=iperf-server', '--', 'iperf3', '-s', '-p', String(IPERF_PORT));
    const podIP = (await ciliary(w1, 'get', 'pods', 'iperf-server', '-o', 'wide')).split('\n')[1].split(/\s+/)[5];
    await ciliary(ctr, 'create', 'service', 'iperf', '--type', 'NodePort', '--selector', 'app=iperf-server', '--port', `${IPERF_PORT}`);
    await ciliary(ctr, 'patch', 'svc', 'iperf', '-p', JSON.stringify({ spec: { ports: [{ port: IPERF_PORT, targetPort: IPERF_PORT, nodePort: NODE_PORT }] } }));
    // kube-proxy's shape: KUBE-MARK-MASQ on the NodePort hit, DNAT to the endpoint, MASQUERADE marked packets.
    const ipt = (...a: string[]) => sh('ip', 'netns', 'exec', `${prefix}k8s-ctr`, 'iptables', '-t', 'nat', ...a);
    ipt('-A', 'PREROUTING', '-d', nodeIP(0), '-p', 'tcp', '--dport', String(KERNEL_PORT), '-j', 'MARK', '--set-xmark', KUBE_MARK_MASQ);
    ipt('-A', 'PREROUTING', '-d', nodeIP(0), '-p', 'tcp', '--dport', String(KERNEL_PORT), '-j', 'DNAT', '--to-destination', `${podIP}:${IPERF_PORT}`);
    ipt('-A', 'POSTROUTING', '-m', 'mark', '--mark', KUBE_MARK_MASQ, '-j', 'MASQUERADE');
    const nodePortGbps = await gbps(client, nodeIP(0), NODE_PORT);
    const kernelGbps = await gbps(client, nodeIP(0), KERNEL_PORT);
    return {
      northsouth_nodeport_remote_tcp_gbps: round(nodePortGbps),
      northsouth_kernel_nodeport_remote_tcp_gbps: round(kernelGbps),
      ratio_nodeport_vs_kernel_nodeport_tcp: round(nodePortGbps / kernelGbps),
    };
  } finally {
    await lab('down').catch((e: Error) => console.warn(`cluster.sh down: ${e.message}`));
    rmSync(stateRoot, { recursive: true, force: true });
  }
}
