// DNS for the outside world and toFQDNs against it in a two-node lab (native routing, etcd): the
// internet host's DNS (zone ciliary.test, scripts/netns/outside.sh) is the nodes' resolver, so the
// CoreDNS pods on k8s-ctr forward outside names to it; a pod on k8s-w1 resolves them through
// kube-dns, and a toFQDNs rule lets it reach internet.ciliary.test:80 only, until the answer's TTL
// runs out; the proxies' upstream leg speaks as the pod across nodes; and with enable-host-firewall a
// host policy filters what testpc sends to a node's own ports, never the control plane's, and fails
// open while the agent is down. Names carry a per-run tag; state lives in a temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { nsSpawn, requireRoot, run, stop, waitListening } from '../helpers/sys.ts';
import { HTTP_SERVER, Lab, until } from '../helpers/lab.ts';

const root = requireRoot();
/** A short TTL on the lab's answers (and a smaller tofqdns-min-ttl): the expiry test waits for it. */
const TTL_S = 10;
const lab = root ? new Lab('fq', [`CILIARY_LAB_DNS_TTL=${TTL_S}`, 'CILIARY_AGENT_ARGS=--tofqdns-min-ttl 2 --enable-host-firewall']) : (undefined as unknown as Lab);
const esc = (s: string) => s.replace(/\./g, '\\.');

/** The egress rule both policies start with: DNS to kube-dns through the DNS proxy. */
const DNS_VIA_PROXY = `  - toEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, "k8s:k8s-app": kube-dns}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules: {dns: [{matchPattern: "*"}]}
`;

describe.skipIf(!root)('outside DNS through CoreDNS and toFQDNs, two nodes', () => {
  const client = root ? lab.pod('client') : '';
  let clientIP = '';
  let webIP = '';
  const sh = (script: string) => lab.exec('k8s-w1', client, ['sh', '-c', script], 30_000);
  const dig = async (...args: string[]) => (await lab.exec('k8s-w1', client, ['dig', '+tries=1', '+timeout=3', ...args])).stdout;
  /** curl by URL from the client: the body, or undefined when the connection fails. */
  const curl = (url: string) => lab.curl('k8s-w1', client, url);

  beforeAll(async () => {
    await lab.up(2);
    clientIP = await lab.runPod('k8s-w1', client, 'app=fqdn-client');
    webIP = await lab.runPod('k8s-ctr', lab.pod('web'), 'app=fqdn-web', HTTP_SERVER);
  }, 300_000);

  let nodeServer: ChildProcess | undefined;
  afterAll(async () => {
    await stop(nodeServer);
    if (root) await lab.down();
  }, 120_000);

  it('a pod resolves internet.ciliary.test through kube-dns: CoreDNS forwards it to the internet host, which sees k8s-ctr', async () => {
    const answer = await until('the outside name through CoreDNS', async () => {
      const out = await dig('internet.ciliary.test');
      return out.includes('status: NOERROR') ? out : undefined;
    }, 90_000);
    expect(answer).toMatch(new RegExp(`^internet\\.ciliary\\.test\\.\\s+${TTL_S}\\s+IN\\s+A\\s+${esc(lab.internetIP)}$`, 'm'));
    expect(answer).toMatch(/;; SERVER: 10\.96\.0\.10#53\(10\.96\.0\.10\)/);
    expect((await dig('+short', 'www.ciliary.test')).trim()).toBe(lab.internetIP);
    expect(await dig('nosuch.ciliary.test')).toMatch(/status: NXDOMAIN/);
    // Both CoreDNS replicas run on k8s-ctr: their forwarded query leaves masqueraded as k8s-ctr's IP.
    const log = readFileSync(join(lab.stateRoot, 'outside', 'internet-dns.log'), 'utf8');
    expect(log).toMatch(new RegExp(`^\\[INFO\\] ${esc(lab.nodeIP(0))} - "A IN internet\\.ciliary\\.test\\. udp" NOERROR$`, 'm'));
  }, 120_000);

  it('toFQDNs matchName internet.ciliary.test on 80: allowed by that name, not by www nor on 8080; the TTL ends the allow', async () => {
    // Before the policy: every way to the host works.
    expect(await until('www:8080 before the policy', () => curl('http://www.ciliary.test:8080/'))).toMatch(/RemoteAddr: /);
    const policy = lab.file('fqdn.yaml', `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${lab.tag}-fqdn, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: fqdn-client}}
  egress:
${DNS_VIA_PROXY}  - toFQDNs: [{matchName: internet.ciliary.test}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`);
    await lab.ok('k8s-ctr', 'apply', '-f', policy);
    // The same address by the other name (learned first, so no allowed selector holds it yet): denied.
    await until('www to be denied', async () => ((await curl('http://www.ciliary.test/')) === undefined ? true : undefined), 60_000);
    const body = await until('internet.ciliary.test:80 allowed', () => curl('http://internet.ciliary.test/'), 60_000);
    // Masqueraded on k8s-w1's native device: the internet host sees the node.
    expect(body).toMatch(new RegExp(`^RemoteAddr: ${esc(lab.nodeIP(1))}:\\d+$`, 'm'));
    expect(await curl('http://internet.ciliary.test:8080/')).toBeUndefined();
    const cache = await lab.ok('k8s-w1', 'fqdn', 'cache', 'list');
    expect(cache).toMatch(new RegExp(`^\\d+\\s+lookup\\s+internet\\.ciliary\\.test\\.\\s+${TTL_S}\\s+\\S+\\s+${esc(lab.internetIP)}$`, 'm'));
    const drops = await lab.ok('k8s-w1', 'observe', '--type', 'drop', '--last', '50');
    expect(drops).toMatch(new RegExp(`default/${client}:\\d+ \\(ID:\\d+\\) <> ${esc(lab.internetIP)}:8080 \\([^)]+\\) Policy denied DROPPED \\(TCP Flags: SYN\\)`));
    // A fresh answer, then the address alone (no lookup) works until the TTL has passed.
    const fresh = await sh(`dig +short internet.ciliary.test >/dev/null && curl -s --max-time 2 http://${lab.internetIP}/`);
    expect(fresh.stdout).toMatch(/^RemoteAddr: /m);
    await until('the allow to expire with the TTL', async () => ((await curl(`http://${lab.internetIP}/`)) === undefined ? true : undefined), 60_000);
    expect(await lab.ok('k8s-w1', 'fqdn', 'cache', 'list')).not.toContain('internet.ciliary.test.');
    await lab.ok('k8s-ctr', 'delete', 'cnp', `${lab.tag}-fqdn`);
  }, 240_000);

  it('the proxies speak as the pod across nodes: CoreDNS on k8s-ctr logs the pod\'s address, so do a pod and the internet host behind an L7 HTTP rule', async () => {
    const policy = lab.file('l7.yaml', `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${lab.tag}-l7, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: fqdn-client}}
  egress:
${DNS_VIA_PROXY}  - toEndpoints: [{matchLabels: {app: fqdn-web}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{}]}
  - toFQDNs: [{matchName: internet.ciliary.test}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{}]}
`);
    await lab.ok('k8s-ctr', 'apply', '-f', policy);
    // Through k8s-w1's HTTP proxy to the pod on k8s-ctr: the server sees the client pod, not k8s-w1's router IP.
    expect(await until('the web pod through the L7 proxy', async () => {
      const body = await curl(`http://${webIP}/`);
      const flows = (await lab.ok('k8s-w1', 'observe', '--type', 'l7', '--last', '20'));
      return body !== undefined && flows.includes('http-response') ? body : undefined;
    }, 60_000)).toBe(`${lab.pod('web')} ${clientIP}\n`);
    // Through the DNS proxy to CoreDNS on k8s-ctr, and on through the HTTP proxy to the internet host (masqueraded).
    const body = await until('internet.ciliary.test through both proxies', () => curl('http://internet.ciliary.test/'), 60_000);
    expect(body).toMatch(new RegExp(`^RemoteAddr: ${esc(lab.nodeIP(1))}:\\d+$`, 'm'));
    const coredns = (await lab.ok('k8s-ctr', 'get', 'pods', '-n', 'kube-system')).split('\n').filter((l) => l.startsWith('coredns-')).map((l) => l.split(/\s+/)[0]);
    expect(coredns).toHaveLength(2);
    const logs = (await Promise.all(coredns.map((p) => lab.ok('k8s-ctr', 'logs', '-n', 'kube-system', p)))).join('');
    expect(logs).toMatch(new RegExp(`^\\[INFO\\] ${esc(clientIP)} - "A IN internet\\.ciliary\\.test\\. udp" NOERROR `, 'm'));
    await lab.ok('k8s-ctr', 'delete', 'cnp', `${lab.tag}-l7`);
  }, 180_000);

  it('host firewall from the native device: testpc reaches 8080 on k8s-w1, not 9090 (drop flow); etcd and the kube API stay open; the agent down fails open', async () => {
    nodeServer = nsSpawn(lab.ns('k8s-w1'), ['node', '-e', "for (const p of [8080, 9090]) require('http').createServer((q,s)=>s.end('node '+p+' '+q.socket.remoteAddress+'\\n')).listen(p,'0.0.0.0')"]);
    await waitListening(lab.ns('k8s-w1'), 9090);
    const fromTestpc = async (url: string) => {
      const r = await run('ip', ['netns', 'exec', lab.ns('testpc'), 'curl', '-sk', '--connect-timeout', '2', '--max-time', '3', url], 10_000);
      return r.code === 0 ? r.stdout : undefined;
    };
    const w1 = lab.nodeIP(1);
    expect(await fromTestpc(`http://${w1}:9090/`)).toBe(`node 9090 ${lab.testpcIP}\n`);
    const policy = lab.file('host-fw.yaml', `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: ${lab.tag}-host-fw}
spec:
  nodeSelector: {}
  ingress:
  - fromEntities: [world, cluster]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`);
    await lab.ok('k8s-ctr', 'apply', '-f', policy);
    await until('9090 to be blocked on k8s-w1', async () => ((await fromTestpc(`http://${w1}:9090/`)) === undefined ? true : undefined), 60_000);
    expect(await fromTestpc(`http://${w1}:8080/`)).toBe(`node 8080 ${lab.testpcIP}\n`);
    const drops = await lab.ok('k8s-w1', 'observe', '--type', 'drop', '--last', '50');
    expect(drops).toMatch(new RegExp(`${esc(lab.testpcIP)}:\\d+ \\(world\\) <> ${esc(w1)}:9090 \\(host\\) Policy denied DROPPED \\(TCP Flags: SYN\\)`));
    // The control plane under the same policy on every node: the kube API answers testpc, and a write
    // through k8s-w1 (etcd on k8s-ctr:2379) reaches k8s-ctr.
    expect(await fromTestpc(`https://${lab.nodeIP(0)}:6443/version`)).toMatch(/"gitVersion"|"kind"/);
    // Agent down: the steering route has no carrier and is skipped, the node's ports answer unfiltered.
    const pid = lab.agentPid('k8s-w1');
    process.kill(pid, 'SIGTERM');
    const gone = () => { try { process.kill(pid, 0); return undefined; } catch { return true; } };
    await until('k8s-w1 agent to exit', async () => gone(), 30_000);
    expect(await until('9090 while the agent is down', () => fromTestpc(`http://${w1}:9090/`), 30_000)).toBe(`node 9090 ${lab.testpcIP}\n`);
    const restart = await lab.sh(['restart', 'k8s-w1']);
    expect(restart.code).toBe(0);
    await until('9090 blocked again after the restart', async () => ((await fromTestpc(`http://${w1}:9090/`)) === undefined ? true : undefined), 60_000);
    await lab.ok('k8s-w1', 'delete', 'ccnp', `${lab.tag}-host-fw`);
    await until('the delete through k8s-w1 seen on k8s-ctr', async () => (!(await lab.ok('k8s-ctr', 'get', 'ccnp')).includes(`${lab.tag}-host-fw`) ? true : undefined), 30_000);
  }, 240_000);
});
