// Three real agents over a real etcd in VXLAN tunnel mode (cluster.sh up 3 --routing-mode tunnel):
// pods on three nodes reach each other by IP, by service name and through a service whose backend
// is remote; status, `bpf tunnel list` and `bpf ipcache list` show the tunnel; tcpdump on a node's
// eth1 decodes the frames as VXLAN with the source identity as VNI; a deny policy drops on the
// destination node; a NodePort on k8s-ctr reaches its backend on w1 through the tunnel, SNATed; a node whose agent stops answering (SIGSTOP) leaves the others' tunnel map, ipcache
// and routes within 10 s, counted by cilium_unreachable_nodes, and comes back on SIGCONT. The cases both
// routing modes share are in test/helpers/cross-node-cases.ts. The lab carries a per-run prefix, net and state root.
import { expect, it } from 'vitest';
import { nsSpawn, stop, waitForOutput } from '../helpers/sys.ts';
import { Lab, until } from '../helpers/lab.ts';
import { crossNodeSuite } from '../helpers/cross-node-cases.ts';

const VXLAN_PORT = '8472';

crossNodeSuite('tunnel', 't', 'three nodes over etcd, VXLAN tunnel', ({ lab, pod, ip }) => {
  it('bpf tunnel list maps the other nodes\' pod CIDRs to their node IPs; bpf ipcache list has tunnelendpoint=<node IP>', async () => {
    const tunnels = await until('both remote CIDRs in the tunnel map of k8s-ctr', async () => {
      const out = await lab.ok('k8s-ctr', 'bpf', 'tunnel', 'list');
      return out.includes('172.20.1.0:0') && out.includes('172.20.2.0:0') ? out : undefined;
    });
    expect(tunnels.split('\n')[0]).toMatch(/^TUNNEL +VALUE$/);
    expect(tunnels).toMatch(new RegExp(`^172\\.20\\.1\\.0:0 +${lab.nodeIP(1).replace(/\./g, '\\.')}:0 *$`, 'm'));
    expect(tunnels).toMatch(new RegExp(`^172\\.20\\.2\\.0:0 +${lab.nodeIP(2).replace(/\./g, '\\.')}:0 *$`, 'm'));
    expect(tunnels).not.toContain('172.20.0.0:0');
    const list = await until('remote pods in the ipcache of k8s-ctr', async () => {
      const out = await lab.ok('k8s-ctr', 'bpf', 'ipcache', 'list');
      return out.includes(`${ip.web1}/32`) && out.includes(`${ip.web2}/32`) ? out : undefined;
    });
    expect(Lab.ipcacheEntry(list, `${ip.web1}/32`)).toMatch(new RegExp(`^identity=\\d+ encryptkey=0 tunnelendpoint=${lab.nodeIP(1)}$`));
    expect(Lab.ipcacheEntry(list, `${ip.web2}/32`)).toMatch(new RegExp(`^identity=\\d+ encryptkey=0 tunnelendpoint=${lab.nodeIP(2)}$`));
    expect(Lab.ipcacheEntry(list, `${ip.client}/32`)).toMatch(/^identity=\d+ encryptkey=0 tunnelendpoint=0\.0\.0\.0$/);
  });

  it('tcpdump on k8s-ctr\'s eth1 decodes the frames as VXLAN with the client\'s identity as VNI', async () => {
    const identity = /identity=(\d+)/.exec(Lab.ipcacheEntry(await lab.ok('k8s-ctr', 'bpf', 'ipcache', 'list'), `${ip.client}/32`) ?? '')?.[1];
    expect(Number(identity)).toBeGreaterThanOrEqual(256);
    const dump = nsSpawn(lab.nodeNs('k8s-ctr'), ['tcpdump', '-i', 'eth1', '-nn', '-vv', '-l', '-c', '4', '-T', 'vxlan', 'udp', 'port', VXLAN_PORT, 'and', 'src', lab.nodeIP(0)]);
    try {
      await waitForOutput(dump, /listening on/, 'tcpdump listening', 10_000);
      const text = new Promise<string>((resolve) => {
        let out = '';
        dump.stdout!.on('data', (d) => (out += d));
        dump.on('exit', () => resolve(out));
      });
      expect(await lab.curl('k8s-ctr', pod('client'), `http://${ip.web1}/`)).toBe(`${pod('web1')} ${ip.client}\n`);
      const decoded = await text;
      // Outer UDP to the peer node's tunnel port, the I flag, the VNI; the inner TCP with a correct checksum.
      expect(decoded).toContain(`${lab.nodeIP(0)}.`);
      expect(decoded).toMatch(new RegExp(`> ${lab.nodeIP(1).replace(/\./g, '\\.')}\\.${VXLAN_PORT}: VXLAN, flags \\[I\\] \\(0x08\\), vni ${identity}\\n`));
      expect(decoded).toMatch(new RegExp(`${ip.client.replace(/\./g, '\\.')}\\.\\d+ > ${ip.web1.replace(/\./g, '\\.')}\\.80: Flags \\[S\\], cksum 0x[0-9a-f]+ \\(correct\\)`));
    } finally {
      await stop(dump);
    }
  }, 30_000);

  it('NodePort on k8s-ctr, backend on w1: the outside client\'s flow is SNATed to k8s-ctr\'s IP and encapsulated; the reply returns through k8s-ctr', async () => {
    const svc = pod('np');
    await lab.ok('k8s-ctr', 'apply', '-f', lab.file('np.yaml', `apiVersion: v1\nkind: Service\nmetadata: {name: ${svc}}\nspec:\n  type: NodePort\n  selector: {app: web1}\n  ports: [{port: 80, targetPort: 80, nodePort: 30090}]\n`));
    const dump = nsSpawn(lab.nodeNs('k8s-ctr'), ['tcpdump', '-i', 'eth1', '-nn', '-l', '-T', 'vxlan', 'udp', 'port', VXLAN_PORT, 'and', 'src', lab.nodeIP(0), 'and', 'dst', lab.nodeIP(1)]);
    try {
      await waitForOutput(dump, /listening on/, 'tcpdump listening', 10_000);
      // Inside the tunnel: the SNATed flow, k8s-ctr's address and a port of the masquerade range.
      const inTunnel = waitForOutput(dump, new RegExp(`${lab.nodeIP(0).replace(/\./g, '\\.')}\\.6\\d{4} > ${ip.web1.replace(/\./g, '\\.')}\\.80: `), 'the SNATed flow in the tunnel', 20_000);
      expect(await until('k8s-ctr:30090 from testpc', () => lab.inHost('testpc', ['curl', '-s', '--max-time', '2', `http://${lab.nodeIP(0)}:30090/`]))).toBe(`${pod('web1')} ${lab.nodeIP(0)}\n`);
      await inTunnel;
    } finally {
      await stop(dump);
    }
    expect(await lab.ok('k8s-ctr', 'bpf', 'nat', 'list')).toMatch(new RegExp(`^TCP OUT ${lab.testpcIP.replace(/\./g, '\\.')}:\\d+ -> ${ip.web1.replace(/\./g, '\\.')}:80 XLATE_SRC ${lab.nodeIP(0).replace(/\./g, '\\.')}:\\d+ `, 'm'));
    await lab.ok('k8s-ctr', 'delete', 'svc', svc);
  }, 60_000);

  it('w2\'s agent stopped (SIGSTOP): within 10 s its tunnel, ipcache and route entries are gone on the others and it is counted unreachable; SIGCONT brings it back', async () => {
    const pid = lab.agentPid('k8s-w2');
    const gone = async (node: 'k8s-ctr' | 'k8s-w1') => {
      const tunnels = await lab.ok(node, 'bpf', 'tunnel', 'list');
      const ipcache = await lab.ok(node, 'bpf', 'ipcache', 'list');
      return !tunnels.includes('172.20.2.0:0') && !ipcache.includes(`${ip.web2}/32`) && !lab.routes(node).includes('172.20.2.0/24')
        && (await lab.metric(node, 'cilium_unreachable_nodes')) === 1;
    };
    process.kill(pid, 'SIGSTOP');
    try {
      const stopped = Date.now();
      await until('w2 gone from k8s-ctr and w1', async () => ((await gone('k8s-ctr')) && (await gone('k8s-w1')) ? true : undefined), 10_000);
      expect(Date.now() - stopped).toBeLessThan(10_000);
      expect(await lab.curl('k8s-ctr', pod('client'), `http://${ip.web1}/`)).toBe(`${pod('web1')} ${ip.client}\n`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Its lease granted again and its keys put back: the others follow with no restart.
    await until('w2 back on k8s-ctr', async () => {
      const back = (await lab.ok('k8s-ctr', 'bpf', 'tunnel', 'list')).includes('172.20.2.0:0') && (await lab.metric('k8s-ctr', 'cilium_unreachable_nodes')) === 0;
      return back ? true : undefined;
    }, 30_000);
    expect(await until('web2 again from k8s-ctr', () => lab.curl('k8s-ctr', pod('client'), `http://${ip.web2}/`), 30_000)).toBe(`${pod('web2')} ${ip.client}\n`);
    expect(lab.agentPid('k8s-w2')).toBe(pid);
  }, 90_000);
});
