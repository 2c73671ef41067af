// The real kubectl against the agent's kube API, second part: replicasets, endpointslices, leases, the
// 409 of a stale resourceVersion, forced deletes, kubectl explain, and the cilium-dbg verbs through
// `kubectl exec -n kube-system ds/cilium -c cilium-agent -- …`.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
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
const tmp = mkdtempSync(join(tmpdir(), 'ciliary-kubectl-res-'));

describe.skipIf(!root || !haveKubectl)('kubectl: controllers, conflicts, explain, cilium-dbg', () => {
  let agent: TestAgent;
  let k: Kubectl;
  const kubectl = (args: string[], input?: string) => k.run(args, input);

  beforeAll(async () => {
    ({ agent, k } = await startKubeAgent(tmp));
    await kubectl(['apply', '-f', join(examples, 'http-sw-app.yaml')]);
    await until('four running pods', async () => lines((await kubectl(['get', 'pods', '--no-headers'])).stdout).filter((l) => cols(l)[2] === 'Running').length === 4);
  });

  afterAll(() => stopKubeAgent(agent, tmp));

  const podIPs = async (prefix: string) => ((await agent.api('GET', '/v1/pods')).body as Array<{ name: string; podIP: string }>).filter((p) => p.name.startsWith(prefix)).map((p) => p.podIP).sort();
  const inAgent = (cmd: string[]) => kubectl(['exec', '-n', 'kube-system', 'ds/cilium', '-c', 'cilium-agent', '--', ...cmd]);

  it('get rs shows the deployment\'s ReplicaSet, which the replicas\' ownerReferences name', async () => {
    const rs = await kubectl(['get', 'rs']);
    expect(cols(lines(rs.stdout)[0])).toEqual(['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE']);
    const [name, ...counts] = cols(lines(rs.stdout)[1]);
    expect(name).toMatch(/^deathstar-[bcdfghjklmnpqrstvwxz2456789]{9,10}$/);
    expect(counts.slice(0, 3)).toEqual(['2', '2', '2']);
    const owners = await kubectl(['get', 'pods', '-l', 'class=deathstar', '-o', 'jsonpath={range .items[*]}{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}{"\\n"}{end}']);
    expect(lines(owners.stdout)).toEqual([`ReplicaSet/${name}`, `ReplicaSet/${name}`]);
    const hash = await kubectl(['get', 'rs', name, '-o', 'jsonpath={.spec.selector.matchLabels.pod-template-hash}']);
    expect(`deathstar-${hash.stdout}`).toBe(name);
  });

  it('get endpointslices lists the service\'s ready pod addresses', async () => {
    const r = await kubectl(['get', 'endpointslices', '-l', 'kubernetes.io/service-name=deathstar']);
    expect(cols(lines(r.stdout)[0])).toEqual(['NAME', 'ADDRESSTYPE', 'PORTS', 'ENDPOINTS', 'AGE']);
    const row = cols(lines(r.stdout)[1]);
    expect(row[0]).toMatch(/^deathstar-[a-z0-9]{5}$/);
    expect(row.slice(1, 3)).toEqual(['IPv4', '80']);
    expect(row[3].split(',').sort()).toEqual(await podIPs('deathstar-'));
  });

  it('kubectl apply writes Endpoints for a selector-less service; one for a service with a selector is refused', async () => {
    const svc = 'apiVersion: v1\nkind: Service\nmetadata: {name: outside}\nspec:\n  ports: [{port: 80, targetPort: 8080}]\n';
    const ep = (name: string) => `apiVersion: v1\nkind: Endpoints\nmetadata: {name: ${name}}\nsubsets:\n- addresses: [{ip: 203.0.113.30}]\n  ports: [{port: 8080}]\n`;
    const applied = await kubectl(['apply', '-f', '-'], `${svc}---\n${ep('outside')}`);
    expect(applied.stdout).toBe('service/outside created\nendpoints/outside created\n');
    const got = await kubectl(['get', 'endpoints', 'outside']);
    expect(cols(lines(got.stdout)[1]).slice(0, 2)).toEqual(['outside', '203.0.113.30:8080']);
    const refused = await kubectl(['apply', '-f', '-'], ep('deathstar'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('service "deathstar" has a selector');
    await kubectl(['delete', 'svc,endpoints', 'outside']);
  });

  it('get leases -n kube-system shows the controllers\' lease held by this node', async () => {
    const r = await kubectl(['get', 'leases', '-n', 'kube-system']);
    expect(cols(lines(r.stdout)[0])).toEqual(['NAME', 'HOLDER', 'AGE']);
    expect(cols(lines(r.stdout)[1]).slice(0, 2)).toEqual(['cilium-operator-resource-lock', agent.node]);
    const one = await kubectl(['-n', 'kube-system', 'get', 'lease', 'cilium-operator-resource-lock', '-o', 'jsonpath={.spec.holderIdentity}']);
    expect(one.stdout).toBe(agent.node);
  });

  it('an update with a stale resourceVersion gets 409 Conflict and changes nothing', async () => {
    const old = (await kubectl(['get', 'deploy', 'deathstar', '-o', 'json'])).stdout;
    const stale = JSON.parse(old) as { metadata: { resourceVersion: string; labels?: Record<string, string> }; spec: { replicas: number } };
    expect((await kubectl(['label', 'deploy', 'deathstar', 'tier=backend'])).stdout).toBe('deployment.apps/deathstar labeled\n');
    const now = (await kubectl(['get', 'deploy', 'deathstar', '-o', 'jsonpath={.metadata.resourceVersion}'])).stdout;
    expect(Number(now)).toBeGreaterThan(Number(stale.metadata.resourceVersion));
    stale.spec.replicas = 3;
    const r = await kubectl(['replace', '-f', '-'], JSON.stringify(stale));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Error from server (Conflict)');
    expect(r.stderr).toContain('Operation cannot be fulfilled on deployments.apps "deathstar": the object has been modified; please apply your changes to the latest version and try again');
    // The Status body as the API server sends it.
    const token = readFileSync(join(agent.stateDir, 'kube', 'token'), 'utf8').trim();
    const put = await run('nsenter', [`--net=/var/run/netns/${agent.nodeNetns}`, 'curl', '-sk', '-X', 'PUT', '-H', `Authorization: Bearer ${token}`, '-H', 'content-type: application/json',
      '--data-binary', JSON.stringify(stale), '-w', '\n%{http_code}', 'https://127.0.0.1:6443/apis/apps/v1/namespaces/default/deployments/deathstar']);
    const [body, code] = lines(put.stdout);
    expect(code).toBe('409');
    expect(JSON.parse(body)).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Conflict', code: 409, details: { name: 'deathstar', group: 'apps', kind: 'deployments' } });
    expect((await kubectl(['get', 'deploy', 'deathstar', '-o', 'jsonpath={.spec.replicas} {.metadata.labels.tier}'])).stdout).toBe('2 backend');
    // With the current resourceVersion the same replace goes through.
    const fresh = JSON.parse((await kubectl(['get', 'deploy', 'deathstar', '-o', 'json'])).stdout) as { metadata: { labels: Record<string, string> } };
    delete fresh.metadata.labels.tier;
    expect((await kubectl(['replace', '-f', '-'], JSON.stringify(fresh))).stdout).toBe('deployment.apps/deathstar replaced\n');
  });

  it('delete --grace-period=0 --force and --grace-period=N are accepted', async () => {
    for (const name of ['quick', 'graceful']) await kubectl(['run', name, '--image=busybox', '--restart=Never', '--', 'sleep', '300']);
    const forced = await kubectl(['delete', 'pod', 'quick', '--grace-period=0', '--force']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toBe('pod "quick" force deleted\n');
    expect(forced.stderr).toContain('Immediate deletion does not wait for confirmation');
    const graceful = await kubectl(['delete', 'pod', 'graceful', '--grace-period=5']);
    expect(graceful.stdout).toBe('pod "graceful" deleted\n');
    expect((await kubectl(['get', 'pod', 'quick', 'graceful', '--ignore-not-found', '-o', 'name'])).stdout).toBe('');
  });

  it('kubectl explain prints the fields and their docs', async () => {
    const c = await kubectl(['explain', 'pod.spec.containers']);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/^KIND:\s+Pod\nVERSION:\s+v1\n/);
    expect(c.stdout).toContain('FIELD: containers <[]Object>');
    expect(c.stdout).toMatch(/List of containers belonging to the pod/);
    expect(c.stdout).toMatch(/^ {2}image\t<string> -required-$/m);
    expect(c.stdout).toMatch(/^ {2}ports\t<\[\]Object>$/m);
    const svc = await kubectl(['explain', 'svc.spec']);
    expect(svc.stdout).toMatch(/^ {2}type\t<string>\n {2}enum: ClusterIP, NodePort, LoadBalancer$/m);
    expect(svc.stdout).toMatch(/^ {2}selector\t<map\[string\]string>$/m);
    const cnp = await kubectl(['explain', 'cnp.spec']);
    expect(cnp.stdout).toMatch(/^GROUP:\s+cilium\.io\nKIND:\s+CiliumNetworkPolicy\nVERSION:\s+v2\n/);
    expect(cnp.stdout).toMatch(/^ {2}endpointSelector\t<Object>\n {4}EndpointSelector selects all endpoints/m);
    const egress = await kubectl(['explain', 'cnp.spec.egress.toPorts']);
    expect(egress.stdout).toContain('FIELD: toPorts <[]Object>');
  });

  it('@kubernetes/client-node lists the pods and watches them change', async () => {
    const client = spawn('nsenter', [`--net=/var/run/netns/${agent.nodeNetns}`, join(repo, 'node_modules', '.bin', 'tsx'), join(repo, 'test', 'helpers', 'client-node-pods.ts'), k.kubeconfig, 'default']);
    let out = '';
    client.stdout.on('data', (d) => (out += d));
    client.stderr.on('data', (d) => (out += d));
    try {
      await until('the client\'s list', async () => out.includes('\n'));
      const [, rv, ...names] = lines(out)[0].split(' ');
      expect(names.filter((n) => !n.startsWith('deathstar-'))).toEqual(['tiefighter', 'xwing']);
      expect(Number(rv)).toBeGreaterThan(0);
      await kubectl(['run', 'watched', '--image=busybox', '--restart=Never', '--', 'sleep', '300']);
      await until('the pod running', async () => /^MODIFIED watched Running \d+\.\d+\.\d+\.\d+$/m.test(out));
      expect(out).toMatch(/^ADDED watched /m);
      await kubectl(['delete', 'pod', 'watched']);
      await until('the delete', async () => /^DELETED watched /m.test(out));
      // Watched from the list's resourceVersion: the pods listed are not replayed as ADDED.
      expect(out).not.toMatch(/^ADDED xwing /m);
    } finally {
      client.kill('SIGKILL');
    }
  });

  it('exec ds/cilium -c cilium-agent runs the seeds\' cilium and cilium-dbg verbs', async () => {
    const list = await inAgent(['cilium', 'endpoint', 'list']);
    expect(list.code).toBe(0);
    const xwing = ((await agent.api('GET', '/v1/endpoint')).body as Array<{ id: number; identity: number; labels: string[] }>).find((e) => e.labels.includes('k8s:class=xwing'))!;
    const [epID, identity] = [String(xwing.id), String(xwing.identity)];
    expect(list.stdout).toMatch(new RegExp(`^${epID}\\s+Disabled\\s+Disabled\\s+${identity}\\s`, 'm'));
    const view = await inAgent(['cilium', 'config', 'view']);
    expect(view.stdout).toMatch(/^routing-mode\s+native$/m);
    const dbgConfig = await inAgent(['cilium-dbg', 'config']);
    expect(dbgConfig.stdout).toMatch(/^##### Read-only configurations #####\n/);
    expect(dbgConfig.stdout).toMatch(/^routing-mode\s+: native$/m);
    expect((await inAgent(['cilium', 'version'])).stdout).toMatch(/^Client: \S+ ciliary .*\nDaemon: \S+ ciliary/);
    const byLabel = JSON.parse((await inAgent(['cilium', 'endpoint', 'get', '-l', 'k8s:class=xwing'])).stdout) as Array<{ id: number }>;
    expect(byLabel.map((e) => e.id)).toEqual([Number(epID)]);
    expect(lines((await inAgent(['cilium-dbg', 'endpoint', 'log', epID])).stdout)[0]).toMatch(/^Timestamp\s+Status\s+State\s+Message$/);
    expect((await inAgent(['cilium-dbg', 'endpoint', 'config', epID])).stdout).toMatch(/^PolicyEnforcementIngress\s+: Disabled$/m);
    const id = await inAgent(['cilium', 'identity', 'get', identity]);
    expect(cols(lines(id.stdout)[1])[0]).toBe(identity);
    expect(id.stdout).toContain('k8s:class=xwing');
    const metrics = await inAgent(['cilium-dbg', 'metrics', 'list']);
    expect(cols(lines(metrics.stdout)[0])).toEqual(['Metric', 'Labels', 'Value']);
    expect(metrics.stdout).toMatch(/^cilium_endpoint\s+\d+\.000000$/m);
    expect((await inAgent(['cilium', 'status', '--wait'])).stdout).toMatch(/^KVStore:\s+Ok/m);
    expect(lines((await inAgent(['cilium', 'bpf', 'metrics', 'list'])).stdout)[0]).toMatch(/^REASON\s+DIRECTION\s+PACKETS\s+BYTES/);
    const landing = await kubectl(['exec', 'xwing', '--', 'curl', '-s', '--max-time', '5', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing']);
    expect(landing.stdout).toBe('Ship landed\n');
    const flows = await inAgent(['hubble', 'observe', '--last', '50', '--from-pod', 'default/xwing']);
    expect(flows.code).toBe(0);
    expect(flows.stdout).toMatch(/default\/xwing/);
    for (const cmd of [['bpf', 'fs', 'show'], ['bpf', 'sha', 'list'], ['bpf', 'prog', 'list'], ['cgroups', 'list'], ['statedb', 'dump'], ['map', 'events', 'cilium_lxc'], ['shell', '--', 'db/show', 'devices']]) {
      const r = await inAgent(['cilium-dbg', ...cmd]);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(lines(r.stdout), cmd.join(' ')).toHaveLength(1);
      expect(r.stdout, cmd.join(' ')).toMatch(/^ciliary /);
    }
  });

  it('the seeds\' config, node and bandwidth lines run as written (pipes included)', async () => {
    const sh = (line: string) => run('sh', ['-c', line.replace(/\bkubectl\b/g, k.argv([]).join(' '))]);
    expect((await sh(`kubectl get cm -n kube-system cilium-config -o yaml | grep -E "tunnel|routing-mode"`)).stdout).toMatch(/^ {2}routing-mode: native\n(.*\n)* {2}tunnel-protocol: vxlan$/m);
    const cidrs = await sh(`kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\\t"}{.spec.podCIDR}{"\\n"}{end}'`);
    const status = (await agent.api('GET', '/v1/status')).body as { ipam: { cidr: string } };
    expect(cidrs.stdout).toBe(`${agent.node}\t${status.ipam.cidr}\n`);
    expect((await sh('kubectl get ciliumnode -o json | grep podCIDRs -A2')).stdout).toContain(`"podCIDRs": [\n                        "${status.ipam.cidr}"`);
    const all = await sh('kubectl get pod -A -owide');
    expect(cols(lines(all.stdout)[0]).slice(0, 3)).toEqual(['NAMESPACE', 'NAME', 'READY']);
    // S0's bandwidth step: the pod's JSON edited and re-applied.
    const server = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: netperf-server\n  annotations:\n    kubernetes.io/egress-bandwidth: "10M"\nspec:\n  containers:\n  - name: netperf\n    image: busybox\n    command: ["sleep", "300"]\n';
    expect((await kubectl(['apply', '-f', '-'], server)).stdout).toBe('pod/netperf-server created\n');
    const reapply = await sh(`kubectl get pod netperf-server -o json | sed -e 's|10M|5M|g' | kubectl apply -f -`);
    expect(reapply.stdout).toBe('pod/netperf-server configured\n');
    expect((await kubectl(['get', 'pod', 'netperf-server', '-o', 'jsonpath={.metadata.annotations.kubernetes\\.io/egress-bandwidth}'])).stdout).toBe('5M');
    expect((await kubectl(['delete', 'pod', 'netperf-server'])).stdout).toBe('pod "netperf-server" deleted\n');
  });
});
