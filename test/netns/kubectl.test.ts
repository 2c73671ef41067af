// The real kubectl (/usr/bin/kubectl) against the agent's Kubernetes API subset, run inside the node
// namespace with the kubeconfig the agent wrote: version, discovery, the Star Wars apply, tables, policies,
// exec, logs, patch, delete, and the API server's errors.
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { requireRoot, run } from '../helpers/sys.ts';
import type { TestAgent } from '../helpers/agent.ts';
import { cols, type Kubectl, lines, startKubeAgent, stopKubeAgent, until } from '../helpers/kubectl.ts';

const root = requireRoot();
const haveKubectl = existsSync('/usr/bin/kubectl');
const repo = join(import.meta.dirname, '..', '..');
const examples = join(repo, 'examples', 'starwars');
const tmp = mkdtempSync(join(tmpdir(), 'ciliary-kubectl-'));
const LANDING = 'deathstar.default.svc.cluster.local/v1/request-landing';

function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

describe.skipIf(!root || !haveKubectl)('kubectl against the agent', () => {
  let agent: TestAgent;
  let kubeconfig: string;

  let k: Kubectl;
  const kubectl = (args: string[], input?: string) => k.run(args, input);

  beforeAll(async () => {
    ({ agent, k } = await startKubeAgent(tmp));
    kubeconfig = k.kubeconfig;
  });

  afterAll(() => stopKubeAgent(agent, tmp));

  it('writes a private kubeconfig and answers kubectl version and cluster-info', async () => {
    expect(statSync(kubeconfig).mode & 0o777).toBe(0o600);
    const v = await kubectl(['version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^Server Version: v1\.32\.0\+ciliary$/m);
    const ctx = await kubectl(['config', 'current-context']);
    expect(ctx.stdout).toBe('kubernetes-admin@kubernetes\n');
    const info = await kubectl(['cluster-info']);
    expect(info.stdout).toContain('Kubernetes control plane is running at https://127.0.0.1:6443');
  });

  it('refuses requests without a client certificate of its CA (401 Status), accepts the bearer token', async () => {
    const url = 'https://127.0.0.1:6443/api/v1/pods';
    const anon = await run('nsenter', [`--net=/var/run/netns/${agent.nodeNetns}`, 'curl', '-sk', '-w', '\n%{http_code}', url]);
    const [body, code] = lines(anon.stdout);
    expect(code).toBe('401');
    expect(JSON.parse(body)).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
    // A client certificate from another CA is no better than none.
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(tmp, 'other.key'), '-out', join(tmp, 'other.crt'), '-subj', '/CN=kubernetes-admin', '-days', '1']);
    const other = await run('nsenter', [`--net=/var/run/netns/${agent.nodeNetns}`, 'curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}', '--cert', join(tmp, 'other.crt'), '--key', join(tmp, 'other.key'), url]);
    expect(other.stdout).toBe('401');
    const token = (await run('cat', [join(agent.stateDir, 'kube', 'token')])).stdout.trim();
    const authed = await run('nsenter', [`--net=/var/run/netns/${agent.nodeNetns}`, 'curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${token}`, url]);
    expect(authed.stdout).toBe('200');
  });

  it('lists the resources with their short names (kubectl api-resources)', async () => {
    const r = await kubectl(['api-resources']);
    expect(r.code).toBe(0);
    const rows = new Map(lines(r.stdout).slice(1).map((l) => [cols(l)[0], cols(l)]));
    expect(rows.get('pods')).toEqual(['pods', 'po', 'v1', 'true', 'Pod']);
    expect(rows.get('services')?.[1]).toBe('svc');
    expect(rows.get('endpoints')?.[1]).toBe('ep');
    expect(rows.get('nodes')).toEqual(['nodes', 'no', 'v1', 'false', 'Node']);
    expect(rows.get('namespaces')?.[1]).toBe('ns');
    expect(rows.get('deployments')).toEqual(['deployments', 'deploy', 'apps/v1', 'true', 'Deployment']);
    expect(rows.get('configmaps')?.[1]).toBe('cm');
    expect(rows.get('ciliumnetworkpolicies')).toEqual(['ciliumnetworkpolicies', 'cnp,ciliumnp', 'cilium.io/v2', 'true', 'CiliumNetworkPolicy']);
    expect(rows.get('ciliumclusterwidenetworkpolicies')?.[1]).toBe('ccnp');
    expect(rows.get('ciliumloadbalancerippools')?.[2]).toBe('cilium.io/v2alpha1');
  });

  it('applies the Star Wars demo and lists it as kubectl prints it', async () => {
    const r = await kubectl(['apply', '-f', join(examples, 'http-sw-app.yaml')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('service/deathstar created\ndeployment.apps/deathstar created\npod/tiefighter created\npod/xwing created\n');
    await until('four running pods', async () => lines((await kubectl(['get', 'pods', '--no-headers'])).stdout).filter((l) => cols(l)[2] === 'Running').length === 4);
    const get = await kubectl(['get', 'pods']);
    expect(cols(lines(get.stdout)[0])).toEqual(['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
    const names = lines(get.stdout).slice(1).map((l) => cols(l)[0]).sort();
    expect(names.filter((n) => /^deathstar-[bcdfghjklmnpqrstvwxz2456789]{9,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/.test(n))).toHaveLength(2);
    expect(names.slice(2)).toEqual(['tiefighter', 'xwing']);
    for (const l of lines(get.stdout).slice(1)) expect(cols(l).slice(1, 4)).toEqual(['1/1', 'Running', '0']);

    const again = await kubectl(['apply', '-f', join(examples, 'http-sw-app.yaml')]);
    expect(again.stdout).toBe('service/deathstar unchanged\ndeployment.apps/deathstar unchanged\npod/tiefighter unchanged\npod/xwing unchanged\n');
  });

  it('get pods -o wide shows the pod IPs and this node; -l, -A and -o name select', async () => {
    const wide = await kubectl(['get', 'pods', '-o', 'wide']);
    expect(cols(lines(wide.stdout)[0])).toEqual(['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES']);
    const pods = (await agent.api('GET', '/v1/pods')).body as Array<{ name: string; podIP: string }>;
    for (const l of lines(wide.stdout).slice(1)) {
      const c = cols(l);
      expect(c[5]).toBe(pods.find((p) => p.name === c[0])!.podIP);
      expect(c.slice(6)).toEqual([agent.node, '<none>', '<none>']);
    }
    const empire = await kubectl(['get', 'pods', '-l', 'org=empire,class!=deathstar', '-o', 'name']);
    expect(empire.stdout).toBe('pod/tiefighter\n');
    const all = await kubectl(['get', 'pods', '-A']);
    expect(cols(lines(all.stdout)[0])[0]).toBe('NAMESPACE');
    const byNs = lines(all.stdout).slice(1).map((l) => `${cols(l)[0]}/${cols(l)[1].replace(/^cilium-.*/, 'cilium-*').replace(/^coredns-.*/, 'coredns-*')}`);
    expect(byNs.filter((x) => !x.startsWith('default/deathstar-'))).toEqual(['default/tiefighter', 'default/xwing', 'kube-system/cilium-*', 'kube-system/coredns-*', 'kube-system/coredns-*']);
    const ip = await kubectl(['get', 'pod', 'xwing', '-o', 'jsonpath={.status.podIP}']);
    expect(ip.stdout).toBe(pods.find((p) => p.name === 'xwing')!.podIP);
  });

  it('get svc,ep shows the ClusterIP service and its endpoints', async () => {
    const r = await kubectl(['get', 'svc,ep']);
    expect(r.code).toBe(0);
    const [svcPart, epPart] = r.stdout.split('\n\n');
    expect(cols(lines(svcPart)[0])).toEqual(['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE']);
    const svc = cols(lines(svcPart)[1]);
    expect(svc.slice(0, 2)).toEqual(['service/deathstar', 'ClusterIP']);
    expect(svc[2]).toMatch(/^10\.96\.\d+\.\d+$/);
    expect(svc.slice(3, 5)).toEqual(['<none>', '80/TCP']);
    const ips = ((await agent.api('GET', '/v1/pods')).body as Array<{ name: string; podIP: string }>).filter((p) => p.name.startsWith('deathstar-')).map((p) => `${p.podIP}:80`);
    const ep = cols(lines(epPart)[1]);
    expect(ep[0]).toBe('endpoints/deathstar');
    expect(ep[1].split(',').sort()).toEqual(ips.sort());
  });

  it('get nodes, deployments, ciliumendpoints, ciliumidentities, ciliumnodes and the cilium-config map', async () => {
    const no = await kubectl(['get', 'no']);
    expect(cols(lines(no.stdout)[1]).slice(0, 3)).toEqual([agent.node, 'Ready', 'control-plane']);
    const deploy = await kubectl(['get', 'deploy']);
    expect(cols(lines(deploy.stdout)[1])).toEqual(['deathstar', '2/2', '2', '2', expect.any(String)]);
    const cep = await kubectl(['get', 'ciliumendpoints']);
    expect(cols(lines(cep.stdout)[0])).toEqual(['NAME', 'SECURITY IDENTITY', 'ENDPOINT STATE', 'IPV4', 'IPV6']);
    const xwing = cols(lines(cep.stdout).find((l) => l.startsWith('xwing '))!);
    expect(xwing[1]).toMatch(/^\d+$/);
    expect(xwing[2]).toBe('ready');
    const ids = await kubectl(['get', 'ciliumidentities', xwing[1]]);
    expect(cols(lines(ids.stdout)[1]).slice(0, 2)).toEqual([xwing[1], 'default']);
    const status = (await agent.api('GET', '/v1/status')).body as { routerIP: string };
    const cn = await kubectl(['get', 'cn']);
    expect(cols(lines(cn.stdout)[0])).toEqual(['NAME', 'CILIUMINTERNALIP', 'INTERNALIP', 'AGE']);
    expect(cols(lines(cn.stdout)[1]).slice(0, 2)).toEqual([agent.node, status.routerIP]);
    const events = await kubectl(['get', 'events']);
    expect(events.stderr).toBe('No resources found in default namespace.\n');
    const mode = await kubectl(['get', 'cm', '-n', 'kube-system', 'cilium-config', '-o', 'jsonpath={.data.routing-mode}']);
    expect(mode.stdout).toBe('native');
    // What `cilium connectivity test` reads for its IP families: IPv4 only.
    const families = await kubectl(['get', 'cm', '-n', 'kube-system', 'cilium-config', '-o', 'jsonpath={.data.enable-ipv4} {.data.enable-ipv6}']);
    expect(families.stdout).toBe('true false');
  });

  it('exec runs the command in the pod (stdout, stdin, exit code); logs prints the pod log', async () => {
    const landing = await kubectl(['exec', 'xwing', '--', 'curl', '-s', '--max-time', '5', '-XPOST', LANDING]);
    expect(landing.stdout).toBe('Ship landed\n');
    expect(landing.code).toBe(0);
    const echo = await kubectl(['exec', '-i', 'tiefighter', '--', 'cat'], 'hello from stdin\n');
    expect(echo.stdout).toBe('hello from stdin\n');
    const fail = await kubectl(['exec', 'tiefighter', '--', 'sh', '-c', 'exit 3']);
    expect(fail.code).toBe(3);
    expect(fail.stderr).toContain('command terminated with exit code 3');
    // With a terminal (-it): script(1) gives kubectl one; its input stays open until the command ends.
    const tty = await run('sh', ['-c', `sleep 2 | script -qc "${k.argv([]).join(' ')} exec -it xwing -- sh -c 'tty; echo in-a-terminal'" /dev/null`]);
    expect(tty.stdout).toMatch(/^\/dev\/pts\/\d+\r\nin-a-terminal\r\n$/);
    const missing = await kubectl(['exec', 'nosuchpod', '--', 'true']);
    expect(missing.stderr).toContain('pods "nosuchpod" not found');
    const logs = await kubectl(['logs', 'tiefighter']);
    const ours = await run(join(repo, 'bin', 'ciliary'), ['--socket', agent.socket, 'logs', 'tiefighter']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toBe(ours.stdout);
  });

  it('kube-system shows the cilium DaemonSet and its pod; exec ds/cilium -c cilium-agent runs the ciliary CLI', async () => {
    const ds = await kubectl(['get', 'ds', '-n', 'kube-system']);
    expect(cols(lines(ds.stdout)[0])).toEqual(['NAME', 'DESIRED', 'CURRENT', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'NODE SELECTOR', 'AGE']);
    expect(cols(lines(ds.stdout)[1]).slice(0, 7)).toEqual(['cilium', '1', '1', '1', '1', '1', 'kubernetes.io/os=linux']);
    const pods = await kubectl(['get', 'pods', '-n', 'kube-system', '-l', 'k8s-app=cilium', '-o', 'name']);
    expect(pods.stdout).toMatch(/^pod\/cilium-[bcdfghjklmnpqrstvwxz2456789]{5}\n$/);
    const viaKubectl = await kubectl(['exec', '-n', 'kube-system', 'ds/cilium', '-c', 'cilium-agent', '--', 'cilium', 'endpoint', 'list']);
    const direct = await run(join(repo, 'bin', 'ciliary'), ['--socket', agent.socket, 'endpoint', 'list']);
    expect(viaKubectl.code).toBe(0);
    expect(viaKubectl.stdout).toBe(direct.stdout);
    expect(viaKubectl.stdout).toContain('reserved:host');
    const rollout = await kubectl(['-n', 'kube-system', 'rollout', 'status', 'ds/cilium', '--timeout=10s']);
    expect(rollout.stdout).toBe('daemon set "cilium" successfully rolled out\n');
    const dbg = await kubectl(['exec', '-n', 'kube-system', 'ds/cilium', '--', 'cilium-dbg', 'status']);
    expect(dbg.stdout).toMatch(/^KVStore:\s+Ok/m);
  });

  it('get cnp after applying the L3/L4 policy, which then drops xwing', async () => {
    const r = await kubectl(['apply', '-f', join(examples, 'sw_l3_l4_policy.yaml')]);
    expect(r.stdout).toBe('ciliumnetworkpolicy.cilium.io/rule1 created\n');
    const cnp = await kubectl(['get', 'cnp']);
    expect(cols(lines(cnp.stdout)[0])).toEqual(['NAME', 'AGE', 'VALID']);
    expect(cols(lines(cnp.stdout)[1])).toEqual(['rule1', expect.any(String), 'True']);
    const tie = await kubectl(['exec', 'tiefighter', '--', 'curl', '-s', '--max-time', '5', '-XPOST', LANDING]);
    expect(tie.stdout).toBe('Ship landed\n');
    const xw = await kubectl(['exec', 'xwing', '--', 'curl', '-s', '--max-time', '2', '-XPOST', LANDING]);
    expect(xw.code).toBe(28);
  });

  it('patch: NodePort gets a port of the range (seed 000), back to ClusterIP, other fields are patched', async () => {
    const ip = (await kubectl(['get', 'svc', 'deathstar', '-o', 'jsonpath={.spec.clusterIP}'])).stdout;
    expect((await kubectl(['patch', 'svc', 'deathstar', '-p', '{"spec":{"type":"NodePort"}}'])).stdout).toBe('service/deathstar patched\n');
    const nodePort = Number((await kubectl(['get', 'svc', 'deathstar', '-o', 'jsonpath={.spec.ports[0].nodePort}'])).stdout);
    expect(nodePort).toBeGreaterThanOrEqual(30000);
    expect(nodePort).toBeLessThanOrEqual(32767);
    expect((await kubectl(['get', 'svc', 'deathstar', '-o', 'jsonpath={.spec.type} {.spec.clusterIP}'])).stdout).toBe(`NodePort ${ip}`);
    const port = (await kubectl(['get', 'svc', 'deathstar', '-o', 'jsonpath={.spec.ports[0].port}'])).stdout;
    expect((await kubectl(['patch', 'svc', 'deathstar', '-p', `{"spec":{"type":"ClusterIP","ports":[{"port":${port},"nodePort":null}]}}`])).stdout).toBe('service/deathstar patched\n');
    expect((await kubectl(['get', 'svc', 'deathstar', '-o', 'jsonpath={.spec.type}'])).stdout).toBe('ClusterIP');
    const aff = await kubectl(['patch', 'svc', 'deathstar', '--type=json', '-p', '[{"op":"add","path":"/spec/sessionAffinity","value":"ClientIP"}]']);
    expect(aff.stdout).toBe('service/deathstar patched\n');
    expect((await kubectl(['get', 'svc', 'deathstar', '-o', 'jsonpath={.spec.sessionAffinity}'])).stdout).toBe('ClientIP');
    const back = await kubectl(['patch', 'svc', 'deathstar', '-p', '{"spec":{"sessionAffinity":"None"}}']);
    expect(back.stdout).toBe('service/deathstar patched\n');
  });

  it("the seeds' fixed NodePort patch (seed 003) and the LB-IPAM objects of seed 002, as written", async () => {
    const patch = await kubectl(['patch', 'svc', 'deathstar', '-p', '{"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 80, "nodePort": 30001}]}}']);
    expect(patch.stdout).toBe('service/deathstar patched\n');
    const row = cols(lines((await kubectl(['get', 'svc', 'deathstar'])).stdout)[1]);
    expect(row.slice(0, 2).concat(row[4])).toEqual(['deathstar', 'NodePort', '80:30001/TCP']);
    expect((await kubectl(['patch', 'svc', 'deathstar', '-p', '{"spec":{"type":"ClusterIP","ports":[{"port":80,"nodePort":null}]}}'])).code).toBe(0);
    const objects = [
      'apiVersion: "cilium.io/v2alpha1"\nkind: CiliumL2AnnouncementPolicy\nmetadata:\n  name: policy1\nspec:\n  serviceSelector:\n    matchLabels:\n      color: blue\n'
        + '  nodeSelector:\n    matchExpressions:\n    - key: node-role.kubernetes.io/control-plane\n      operator: DoesNotExist\n  interfaces:\n  - ^ens[0-9]+\n  externalIPs: true\n  loadBalancerIPs: true\n',
      'apiVersion: "cilium.io/v2alpha1"\nkind: CiliumLoadBalancerIPPool\nmetadata:\n  name: "cilium-pool"\nspec:\n  allowFirstLastIPs: "No"\n  blocks:\n  - cidr: "10.10.200.0/29"\n',
    ];
    for (const o of objects) expect((await kubectl(['apply', '-f', '-'], o)).code).toBe(0);
    const got = await kubectl(['get', 'ciliuml2announcementpolicy,CiliumLoadBalancerIPPool']);
    expect(got.stdout).toMatch(/^ciliuml2announcementpolicy\.cilium\.io\/policy1 /m);
    expect(got.stdout).toMatch(/^ciliumloadbalancerippool\.cilium\.io\/cilium-pool +false +False +6 /m);
    expect((await kubectl(['delete', 'ciliuml2announcementpolicy', 'policy1'])).code).toBe(0);
    expect((await kubectl(['delete', 'ippools', 'cilium-pool'])).code).toBe(0);
  });

  it('run a pod, follow its log (logs -f), scale the deployment', async () => {
    const r = await kubectl(['run', 'ticker', '--image=busybox', '--restart=Never', '--', 'sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done']);
    expect(r.stdout).toBe('pod/ticker created\n');
    const follow = k.spawn(['logs', '-f', 'ticker']);
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`logs -f printed only: ${out}`)), 20_000);
      follow.stdout.on('data', (d) => {
        out += d;
        if (out.includes('tick 5\n')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    follow.kill();
    expect(out.startsWith('tick 0\ntick 1\ntick 2\ntick 3\ntick 4\ntick 5\n')).toBe(true);
    expect((await kubectl(['delete', 'pod', 'ticker'])).stdout).toBe('pod "ticker" deleted\n');

    expect((await kubectl(['scale', 'deploy', 'deathstar', '--replicas=3'])).stdout).toBe('deployment.apps/deathstar scaled\n');
    await until('three deathstar pods', async () => lines((await kubectl(['get', 'pods', '-l', 'class=deathstar', '--no-headers'])).stdout).length === 3);
    expect(cols(lines((await kubectl(['get', 'deploy', 'deathstar'])).stdout)[1])[1]).toBe('3/3');
    await kubectl(['scale', 'deploy', 'deathstar', '--replicas=2']);
    await until('two deathstar pods', async () => lines((await kubectl(['get', 'pods', '-l', 'class=deathstar', '--no-headers'])).stdout).length === 2);
  });

  it('get -w prints changes as they happen; rollout restart and rollout status finish', async () => {
    const watch = k.spawn(['get', 'pods', '-w', '-l', 'class=deathstar']);
    let out = '';
    watch.stdout.on('data', (d) => (out += d));
    const seen = (pred: (s: string) => boolean, what: string) => until(`get -w to print ${what}`, async () => pred(out));
    await seen((s) => lines(s).length >= 3, 'header and two pods');
    const before = lines(out).slice(1).map((l) => cols(l)[0]);
    expect((await kubectl(['rollout', 'restart', 'deploy', 'deathstar'])).stdout).toBe('deployment.apps/deathstar restarted\n');
    // The old replicas leave (Terminating) and new ones come.
    await seen((s) => before.every((n) => lines(s).some((l) => cols(l)[0] === n && cols(l)[2] === 'Terminating'))
      && lines(s).filter((l) => l.startsWith('deathstar-') && !before.includes(cols(l)[0])).length >= 2, 'replaced replicas');
    watch.kill();
    const status = await kubectl(['rollout', 'status', 'deploy', 'deathstar', '--timeout=20s']);
    expect(status.stdout).toBe('deployment "deathstar" successfully rolled out\n');
  });

  it("answers bad requests with the API server's errors and changes nothing", async () => {
    const before = (await kubectl(['get', 'pods', '-o', 'name'])).stdout;
    const bad = file('bad.yaml', 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: c\n    imag: nginx\n');
    const r = await kubectl(['apply', '-f', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('The Pod "bad" is invalid: spec.containers[0].imag: Invalid value: unknown field "imag"');
    const missing = await kubectl(['get', 'pod', 'nosuchpod']);
    expect(missing.stderr).toBe('Error from server (NotFound): pods "nosuchpod" not found\n');
    const dup = await kubectl(['create', '-f', join(examples, 'http-sw-app.yaml')]);
    expect(dup.stderr).toContain('Error from server (AlreadyExists): error when creating');
    expect(dup.stderr).toContain('pods "xwing" already exists');
    expect((await kubectl(['get', 'pods', '-o', 'name'])).stdout).toBe(before);
  });

  it('create/delete namespace, delete -l, delete cnp and delete -f leave nothing', async () => {
    expect((await kubectl(['create', 'ns', 'demo'])).stdout).toBe('namespace/demo created\n');
    expect(cols(lines((await kubectl(['get', 'ns', 'demo'])).stdout)[1]).slice(0, 2)).toEqual(['demo', 'Active']);
    expect((await kubectl(['delete', 'ns', 'demo'])).stdout).toBe('namespace "demo" deleted\n');
    const byLabel = await kubectl(['delete', 'pods', '-l', 'class=tiefighter']);
    expect(byLabel.stdout).toBe('pod "tiefighter" deleted\n');
    expect((await kubectl(['delete', 'cnp', 'rule1'])).stdout).toBe('ciliumnetworkpolicy.cilium.io "rule1" deleted\n');
    const del = await kubectl(['delete', '-f', join(examples, 'http-sw-app.yaml'), '--ignore-not-found']);
    expect(del.stdout).toBe('service "deathstar" deleted\ndeployment.apps "deathstar" deleted\npod "xwing" deleted\n');
    const left = await kubectl(['get', 'pods,svc,cnp']);
    expect(left.stdout).toBe('');
    expect(left.stderr).toBe('No resources found in default namespace.\n');
  });
});
