// The API server as pods see it, in a real two-node lab (etcd, native routing, the Kubernetes API on
// k8s-ctr:6443): the cluster's `default/kubernetes` service (10.96.0.1:443 → k8s-ctr:6443, put back when
// deleted), k8s-ctr's address as kube-apiserver (identity 7) in w1's ipcache and the host identity
// with the kube-apiserver label on k8s-ctr, and a pod whose only egress is `toEntities: [kube-apiserver]`
// reaching https://10.96.0.1/version from either node while another pod stays denied; `fromEntities:
// [kube-apiserver]` admitting k8s-ctr's own connections.
// The lab carries a per-run prefix, net and state root.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { requireRoot } from '../helpers/sys.ts';
import { HTTP_SERVER, Lab, until } from '../helpers/lab.ts';

const root = requireRoot();
const lab = root ? new Lab('a') : (undefined as unknown as Lab);
const pod = (name: string) => lab.pod(name);
const haveKubectl = existsSync('/usr/bin/kubectl');
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe.skipIf(!root)('kube-apiserver entity and the kubernetes service, two nodes over etcd', () => {
  let webIP = '';
  beforeAll(async () => {
    await lab.up(2);
    webIP = await lab.runPod('k8s-ctr', pod('web'), 'app=web', HTTP_SERVER);
    for (const node of ['k8s-ctr', 'k8s-w1'] as const) await lab.ok(node, 'run', pod(`api-${node}`), '--labels', 'kind=api-client', '--node', node);
  }, 300_000);

  afterAll(async () => {
    if (root) await lab.down();
  }, 120_000);

  const kubectl = (...args: string[]) => spawnSync('/usr/bin/kubectl', ['--kubeconfig', lab.kubeconfig('k8s-ctr'), '--cache-dir', join(lab.stateRoot, 'kubectl-cache'), ...args], { encoding: 'utf8', timeout: 60_000 });
  const curl = (node: 'k8s-ctr' | 'k8s-w1', url: string) => lab.exec(node, pod(`api-${node}`), ['curl', '-sk', '--max-time', '3', url]);

  it('get svc,ep: default/kubernetes is ClusterIP 10.96.0.1 443/TCP with k8s-ctr\'s API address as its endpoint', async () => {
    const svc = await until('the kubernetes service', async () => {
      const out = await lab.ok('k8s-w1', 'get', 'svc', '-A');
      return out.includes(' kubernetes ') ? out : undefined;
    });
    expect(svc).toMatch(/^default +kubernetes +ClusterIP +10\.96\.0\.1 +<none> +443\/TCP +/m);
    if (haveKubectl) {
      expect(kubectl('get', 'endpoints', 'kubernetes').stdout).toMatch(new RegExp(`^kubernetes +${re(lab.nodeIP(0))}:6443 +`, 'm'));
      expect(kubectl('get', 'endpointslices', 'kubernetes').stdout).toMatch(new RegExp(`^kubernetes +IPv4 +6443 +${re(lab.nodeIP(0))} +`, 'm'));
    }
    expect(await lab.ok('k8s-w1', 'service', 'list')).toMatch(new RegExp(`^\\d+ +10\\.96\\.0\\.1:443 +ClusterIP +1 => ${re(lab.nodeIP(0))}:6443$`, 'm'));
  });

  it('bpf ipcache list: k8s-ctr\'s address is kube-apiserver (7) on w1; on k8s-ctr the host identity carries reserved:kube-apiserver', async () => {
    const entry = await until('identity 7 for k8s-ctr on w1', async () => {
      const e = Lab.ipcacheEntry(await lab.ok('k8s-w1', 'bpf', 'ipcache', 'list'), `${lab.nodeIP(0)}/32`);
      return e?.startsWith('identity=7 ') ? e : undefined;
    });
    expect(entry).toBe('identity=7 encryptkey=0 tunnelendpoint=0.0.0.0');
    // w1 itself is no API server: k8s-ctr sees it as a plain remote node.
    expect(Lab.ipcacheEntry(await lab.ok('k8s-ctr', 'bpf', 'ipcache', 'list'), `${lab.nodeIP(1)}/32`)).toMatch(/^identity=6 /);
    expect(await lab.ok('k8s-w1', 'identity', 'get', '7')).toMatch(/reserved:kube-apiserver[\s\S]*reserved:remote-node/);
    expect(await lab.ok('k8s-ctr', 'identity', 'get', '1')).toMatch(/reserved:host[\s\S]*reserved:kube-apiserver/);
  });

  it('toEntities kube-apiserver (and DNS): curl -k https://10.96.0.1/version answers from both nodes; another pod is denied', async () => {
    for (const node of ['k8s-ctr', 'k8s-w1'] as const) {
      expect(JSON.parse((await until(`/version from ${node} before any policy`, async () => {
        const r = await curl(node, 'https://10.96.0.1/version');
        return r.code === 0 ? r.stdout : undefined;
      })))).toMatchObject({ major: '1' });
      expect((await curl(node, `http://${webIP}/`)).code).toBe(0);
    }
    const cnp = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${pod('to-k8s')}}
spec:
  endpointSelector: {matchLabels: {kind: api-client}}
  egress:
  - toEntities: [kube-apiserver]
  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
    toPorts: [{ports: [{port: "53", protocol: ANY}]}]
`;
    await lab.ok('k8s-ctr', 'apply', '-f', lab.file('to-k8s.yaml', cnp));
    for (const node of ['k8s-ctr', 'k8s-w1'] as const) {
      await until(`${node}'s client denied the web pod`, async () => ((await curl(node, `http://${webIP}/`)).code !== 0 ? true : undefined));
      const r = await curl(node, 'https://10.96.0.1/version');
      expect(r.code, `${node}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ major: '1' });
    }
    const flows = await until('w1\'s flows to the API server', async () => {
      const out = await lab.ok('k8s-w1', 'observe', '--from-pod', `default/${pod('api-k8s-w1')}`, '--last', '200');
      return out.includes('Policy denied') && out.includes('(kube-apiserver)') ? out : undefined;
    });
    expect(flows).toMatch(new RegExp(`default/${re(pod('api-k8s-w1'))}:\\d+ \\(ID:\\d+\\) -> ${re(lab.nodeIP(0))}:6443 \\(kube-apiserver\\) .*FORWARDED`));
    expect(flows).toMatch(new RegExp(`default/${re(pod('api-k8s-w1'))}:\\d+ \\(ID:\\d+\\) <> default/${re(pod('web'))}:80 \\(ID:\\d+\\) Policy denied DROPPED`));
    await lab.ok('k8s-ctr', 'delete', 'cnp', pod('to-k8s'));
  }, 90_000);

  it('ingress fromEntities kube-apiserver on w1: the k8s-ctr node (the API server) gets in, a pod does not', async () => {
    const web1IP = await lab.runPod('k8s-w1', pod('web1'), 'app=web1', HTTP_SERVER);
    const fromCtrNode = () => lab.inHost('k8s-ctr', ['curl', '-s', '--max-time', '2', `http://${web1IP}/`]);
    expect(await until('web1 from the k8s-ctr node', fromCtrNode)).toBe(`${pod('web1')} ${lab.nodeIP(0)}\n`);
    const cnp = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${pod('from-k8s')}}
spec:
  endpointSelector: {matchLabels: {app: web1}}
  ingress: [{fromEntities: [kube-apiserver]}]
`;
    await lab.ok('k8s-w1', 'apply', '-f', lab.file('from-k8s.yaml', cnp));
    await until('the pod denied', async () => ((await curl('k8s-ctr', `http://${web1IP}/`)).code !== 0 ? true : undefined));
    expect(await fromCtrNode()).toBe(`${pod('web1')} ${lab.nodeIP(0)}\n`);
    await lab.ok('k8s-w1', 'delete', 'cnp', pod('from-k8s'));
  }, 60_000);

  it('kubectl delete svc kubernetes: the cluster puts it back', async () => {
    await lab.ok('k8s-w1', 'delete', 'svc', 'kubernetes');
    const svc = await until('the kubernetes service back', async () => {
      const out = await lab.ok('k8s-w1', 'get', 'svc', 'kubernetes');
      return out.includes('10.96.0.1') ? out : undefined;
    });
    expect(svc).toMatch(/^kubernetes +ClusterIP +10\.96\.0\.1 +<none> +443\/TCP +/m);
    expect((await curl('k8s-w1', 'https://10.96.0.1/version')).code).toBe(0);
  });
});

describe.skipIf(!root)('one node: the agent serves the API itself', () => {
  const one = root ? new Lab('o') : (undefined as unknown as Lab);
  const client = () => one.pod('api-client');
  beforeAll(async () => {
    await one.up(1);
    await one.ok('k8s-ctr', 'run', client(), '--labels', 'kind=api-client');
  }, 300_000);

  afterAll(async () => {
    if (root) await one.down();
  }, 120_000);

  it('a pod allowed only toEntities kube-apiserver reaches https://10.96.0.1/version; its own node is host with the kube-apiserver label', async () => {
    const cnp = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${one.pod('to-k8s')}}
spec:
  endpointSelector: {matchLabels: {kind: api-client}}
  egress: [{toEntities: [kube-apiserver]}]
`;
    await one.ok('k8s-ctr', 'apply', '-f', one.file('to-k8s.yaml', cnp));
    const body = await until('/version through the kubernetes service', async () => {
      const r = await one.exec('k8s-ctr', client(), ['curl', '-sk', '--max-time', '3', 'https://10.96.0.1/version']);
      return r.code === 0 ? r.stdout : undefined;
    });
    expect(JSON.parse(body)).toMatchObject({ major: '1' });
    expect(Lab.ipcacheEntry(await one.ok('k8s-ctr', 'bpf', 'ipcache', 'list'), `${one.nodeIP(0)}/32`)).toMatch(/^identity=1 /);
    expect(await one.ok('k8s-ctr', 'identity', 'get', '1')).toMatch(/reserved:kube-apiserver/);
    // Egress is enforced: the lab's outside host is not the API server.
    expect((await one.exec('k8s-ctr', client(), ['curl', '-s', '--max-time', '2', `http://${one.testpcIP}/`])).code).not.toBe(0);
  }, 60_000);
});
