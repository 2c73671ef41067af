// The cases both routing modes share, for test/lab/multinode.test.ts (native) and tunnel.test.ts: three
// real agents over a real etcd, web1 on w1, web2 and twin (web1's labels) on w2, a client on k8s-ctr;
// the Routing: line, pod to pod by IP with the client's address kept, a service whose only backend is
// on w2 by ClusterIP and by name, and a deny policy dropping on the destination node. Each file adds its
// mode's own cases after these (the ones that stop an agent last).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from './sys.ts';
import { HTTP_SERVER, Lab, until } from './lab.ts';

export type RoutingMode = 'native' | 'tunnel';

/** What a mode's own cases use: the lab, tagged pod names and the pods' addresses (filled by beforeAll). */
export interface CrossNodeLab {
  lab: Lab;
  pod: (name: string) => string;
  ip: Record<'web1' | 'web2' | 'client' | 'twin', string>;
}

const ROUTING_LINE: Record<RoutingMode, RegExp> = {
  native: /^Routing: +Network: Native {3}Host: BPF$/m,
  tunnel: /^Routing: +Network: Tunnel \[vxlan\] {3}Host: BPF$/m,
};

const escaped = (s: string) => s.replace(/\./g, '\\.');

/** A describe block with the lab up in `mode`, the shared cases, then `modeCases`. */
export function crossNodeSuite(mode: RoutingMode, letter: string, title: string, modeCases: (c: CrossNodeLab) => void): void {
  const root = requireRoot();
  const lab = root ? new Lab(letter) : (undefined as unknown as Lab);
  const c: CrossNodeLab = { lab, pod: (name) => lab.pod(name), ip: { web1: '', web2: '', client: '', twin: '' } };
  const { pod, ip } = c;

  describe.skipIf(!root)(title, () => {
    beforeAll(async () => {
      await lab.up(3, ...(mode === 'tunnel' ? ['--routing-mode', 'tunnel'] : []));
      ip.web1 = await lab.runPod('k8s-w1', pod('web1'), 'app=web1', HTTP_SERVER);
      ip.web2 = await lab.runPod('k8s-w2', pod('web2'), 'app=web2', HTTP_SERVER);
      ip.client = await lab.runPod('k8s-ctr', pod('client'), 'app=client');
      // Same labels as web1 on another node: the identity must be the same number.
      ip.twin = await lab.runPod('k8s-w2', pod('twin'), 'app=web1');
    }, 300_000);

    afterAll(async () => {
      if (root) await lab.down();
    }, 120_000);

    it(`status prints the ${mode} Routing: line on every node; routes to the other pod CIDRs via node IPs only in native routing`, async () => {
      for (const node of ['k8s-ctr', 'k8s-w1', 'k8s-w2'] as const) expect(await lab.ok(node, 'status')).toMatch(ROUTING_LINE[mode]);
      if (mode === 'tunnel') {
        expect(lab.routes('k8s-ctr')).not.toContain(`172.20.1.0/24 via ${lab.nodeIP(1)}`);
        return;
      }
      expect(lab.routes('k8s-ctr')).toContain(`172.20.1.0/24 via ${lab.nodeIP(1)} dev eth1`);
      expect(lab.routes('k8s-ctr')).toContain(`172.20.2.0/24 via ${lab.nodeIP(2)} dev eth1`);
      expect(lab.routes('k8s-w1')).toContain(`172.20.0.0/24 via ${lab.nodeIP(0)} dev eth1`);
    });

    it('a pod on k8s-ctr reaches the pods on w1 and w2 by IP, the servers see its address; w1 reaches w2', async () => {
      expect(await until('web1 answering', () => lab.curl('k8s-ctr', pod('client'), `http://${ip.web1}/`))).toBe(`${pod('web1')} ${ip.client}\n`);
      expect(await until('web2 answering', () => lab.curl('k8s-ctr', pod('client'), `http://${ip.web2}/`))).toBe(`${pod('web2')} ${ip.client}\n`);
      expect(await until('web2 from web1', () => lab.curl('k8s-w1', pod('web1'), `http://${ip.web2}/`))).toBe(`${pod('web2')} ${ip.web1}\n`);
      const ping = await lab.exec('k8s-ctr', pod('client'), ['ping', '-c', '2', '-W', '2', ip.twin]);
      expect(ping.stdout).toContain('2 packets transmitted, 2 received');
    });

    it('a service whose only backend is on w2 answers pods on k8s-ctr and w1 by ClusterIP and by name (reverse NAT on the client\'s node)', async () => {
      const file = lab.file('svc.yaml', `apiVersion: v1\nkind: Service\nmetadata: {name: ${pod('web2')}}\nspec:\n  selector: {app: web2}\n  ports: [{port: 80, targetPort: 80}]\n`);
      await lab.ok('k8s-ctr', 'apply', '-f', file);
      const clusterIP = (await lab.ok('k8s-ctr', 'get', 'svc', pod('web2'))).split('\n')[1].split(/\s+/)[2];
      expect(await lab.ok('k8s-ctr', 'service', 'list')).toMatch(new RegExp(`${escaped(clusterIP)}:80 +ClusterIP +1 => ${ip.web2}:80`));
      expect(await until('the service answering', () => lab.curl('k8s-ctr', pod('client'), `http://${clusterIP}/`))).toBe(`${pod('web2')} ${ip.client}\n`);
      expect(await lab.ok('k8s-ctr', 'bpf', 'ct', 'list', 'global')).toMatch(new RegExp(`TCP OUT ${escaped(clusterIP)}:80 -> ${escaped(ip.client)}:\\d+ service `));
      // Applied on k8s-ctr, followed by the other agents: from w1 too, to the backend on w2.
      expect(await until('the service answering on w1', () => lab.curl('k8s-w1', pod('web1'), `http://${clusterIP}/`))).toBe(`${pod('web2')} ${ip.web1}\n`);
      const name = `http://${pod('web2')}.default.svc.cluster.local/`;
      expect(await until('the service by name from k8s-ctr', () => lab.curl('k8s-ctr', pod('client'), name))).toBe(`${pod('web2')} ${ip.client}\n`);
      expect(await until('the service by name from w1', () => lab.curl('k8s-w1', pod('web1'), `http://${pod('web2')}/`))).toBe(`${pod('web2')} ${ip.web1}\n`);
    }, 60_000);

    it('a policy on w1 denying ingress from the client\'s labels drops there with Policy denied; w2 still answers', async () => {
      const file = lab.file('deny.yaml', [
        'apiVersion: cilium.io/v2', 'kind: CiliumNetworkPolicy', `metadata: {name: ${pod('deny-client')}}`, 'spec:',
        '  endpointSelector: {matchLabels: {app: web1}}', '  ingressDeny:', '  - fromEndpoints:', '    - matchLabels: {app: client}', '',
      ].join('\n'));
      await lab.ok('k8s-w1', 'apply', '-f', file);
      try {
        expect((await lab.exec('k8s-ctr', pod('client'), ['curl', '-s', '--max-time', '2', `http://${ip.web1}/`])).code).not.toBe(0);
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
    }, 60_000);

    modeCases(c);
  });
}
