// Cluster DNS in a private three-node lab (real agents over etcd), as seed 003 has it: the two CoreDNS
// replicas run on k8s-ctr, one copy of kube-dns/coredns for the whole cluster, and a pod on k8s-w1
// resolves a service through them, also with the l7-visibility policy sending its DNS through the
// proxy on its own node. Names carry a per-run prefix and namespace; state lives in a temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../helpers/sys.ts';
import { Lab, until } from '../helpers/lab.ts';

const root = requireRoot();
const lab = root ? new Lab('d') : (undefined as unknown as Lab);
const ns = root ? lab.namespace('dns') : '';

describe.skipIf(!root)('cluster DNS in a three-node lab', () => {
  const dig = async (...args: string[]) => (await lab.exec('k8s-w1', 'curl-pod', ['dig', '+tries=1', '+timeout=2', ...args], 30_000, ns)).stdout;

  beforeAll(() => lab.up(3), 300_000);

  afterAll(async () => {
    if (root) await lab.down();
  }, 120_000);

  it('two CoreDNS replicas on k8s-ctr; a pod on k8s-w1 resolves a service through kube-dns, also through its node\'s DNS proxy', async () => {
    const rows = await until('two running CoreDNS pods', async () => {
      const out = (await lab.cli('k8s-w1', 'get', 'pods', '-n', 'kube-system', '-o', 'wide')).out.split('\n').filter((l) => l.startsWith('coredns-')).map((l) => l.split(/\s+/));
      return out.length === 2 && out.every((c) => c[2] === 'Running') ? out : undefined;
    }, 60_000);
    expect(rows.map((c) => c[6])).toEqual(['k8s-ctr', 'k8s-ctr']);
    expect((await lab.cli('k8s-w2', 'get', 'deployments', '-n', 'kube-system')).out).toMatch(/^coredns\s+2\/2/m);
    const file = lab.file('pods.yaml', [
      ['apiVersion: v1', 'kind: Namespace', 'metadata:', `  name: ${ns}`].join('\n'),
      ['apiVersion: v1', 'kind: Pod', 'metadata:', '  name: curl-pod', `  namespace: ${ns}`, '  labels:', '    app: curl', 'spec:', '  nodeName: k8s-w1',
        '  containers:', '  - name: c', '    image: nicolaka/netshoot', '    command: ["tail"]', '    args: ["-f", "/dev/null"]'].join('\n'),
      ['apiVersion: v1', 'kind: Service', 'metadata:', '  name: webpod', `  namespace: ${ns}`, 'spec:', '  selector:', '    app: webpod', '  ports:', '  - port: 80'].join('\n'),
    ].join('\n---\n'));
    expect((await lab.cli('k8s-ctr', 'apply', '-f', file)).code).toBe(0);
    const vip = await until('the webpod service', async () => /^webpod\s+ClusterIP\s+(\S+)/m.exec((await lab.cli('k8s-w1', 'get', 'svc', '-n', ns)).out)?.[1], 60_000);
    await until('curl-pod to resolve webpod', async () => ((await dig('+short', `webpod.${ns}.svc.cluster.local`)).trim() === vip ? true : undefined), 60_000);
    const visibility = lab.file('l7-visibility.yaml', ['apiVersion: cilium.io/v2', 'kind: CiliumNetworkPolicy', 'metadata:', '  name: l7-visibility', `  namespace: ${ns}`, 'spec:',
      '  endpointSelector:', '    matchLabels:', `      "k8s:io.kubernetes.pod.namespace": ${ns}`, '  egress:', '  - toPorts:', '    - ports:', '      - port: "53"',
      '        protocol: ANY', '      rules:', '        dns:', '        - matchPattern: "*"'].join('\n'));
    expect((await lab.cli('k8s-ctr', 'apply', '-f', visibility)).code).toBe(0);
    await until('the proxied lookup and its flow on k8s-w1', async () => {
      if ((await dig('+short', `webpod.${ns}.svc.cluster.local`)).trim() !== vip) return undefined;
      const flows = (await lab.cli('k8s-w1', 'observe', '--type', 'l7', '--last', '20')).out;
      return new RegExp(`${ns}/curl-pod:\\d+ \\(ID:\\d+\\) <- kube-system/coredns-\\w+-\\w+:53 \\(ID:\\d+\\) dns-response proxy FORWARDED \\(DNS Answer "${vip.replaceAll('.', '\\.')}" TTL: 30`).test(flows) ? true : undefined;
    }, 60_000);
    expect(await dig(`other.${ns}.svc.cluster.local`)).toMatch(/status: NXDOMAIN/);
  }, 240_000);
});
