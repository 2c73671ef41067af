// `ciliary apply -f` end to end with the real agent and the CLI as a child process: the Star Wars and
// service labs from examples/, idempotent re-apply, scaling, hostnames, logs and restarts, pending pods,
// namespaces, broken manifests that change nothing, and delete -f leaving nothing behind.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { poll, requireRoot, run, sh } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
const repo = join(import.meta.dirname, '..', '..');
const examples = join(repo, 'examples');
const tmp = mkdtempSync(join(tmpdir(), 'ciliary-manifests-'));

function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}


describe.skipIf(!root)('manifests: ciliary apply / get / delete / logs', () => {
  let agent: TestAgent;
  const cli = (...args: string[]) => run(join(repo, 'bin', 'ciliary'), ['--socket', agent.socket, ...args], 60_000);
  // The test's own pods: kube-system holds the cluster's CoreDNS pods.
  const pods = async () => ((await agent.api('GET', '/v1/resources/pods')).body as Array<{ name: string; namespace: string; status: Record<string, any> }>).filter((p) => p.namespace !== 'kube-system');
  const lxcCount = async () => ((await agent.api('GET', '/v1/map/cilium_lxc')).body as unknown[]).length;
  let baselineLxc = 0;

  beforeAll(async () => {
    agent = new TestAgent();
    await agent.start();
    // The baseline includes the CoreDNS pods the agent starts in the background.
    await poll('the two CoreDNS pods', async () => ((await agent.api('GET', '/v1/pods')).body as Array<{ namespace: string }>).filter((p) => p.namespace === 'kube-system').length === 2, 20_000, 100);
    baselineLxc = await lxcCount();
  });

  afterAll(async () => {
    await agent?.destroy();
  });

  it('applies the Star Wars demo and prints kubectl lines', async () => {
    const r = await cli('apply', '-f', join(examples, 'starwars', 'http-sw-app.yaml'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('service/deathstar created\ndeployment.apps/deathstar created\npod/tiefighter created\npod/xwing created\n');
    expect(r.code).toBe(0);
    const names = (await pods()).map((p) => p.name).sort();
    expect(names).toHaveLength(4);
    const replicas = names.filter((n) => n.startsWith('deathstar-'));
    expect(replicas).toHaveLength(2);
    for (const n of replicas) expect(n).toMatch(/^deathstar-[bcdfghjklmnpqrstvwxz2456789]{9,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    const get = await cli('get', 'deployments');
    expect(get.stdout).toMatch(/^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\ndeathstar\s+2\/2\s+2\s+2\s+\d+s\n$/);
    const gp = await cli('get', 'pods', '-o', 'wide');
    expect(gp.stdout.split('\n')[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE/);
    expect(gp.stdout).toMatch(/\nxwing\s+1\/1\s+Running\s+0\s+/);
  });

  it('xwing lands on the deathstar through the service name', async () => {
    const out = await poll('Ship landed', async () => {
      const r = await cli('exec', 'xwing', '--', 'curl', '-s', '--max-time', '2', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing');
      return r.stdout.includes('Ship landed') ? r.stdout : undefined;
    }, 30_000, 200);
    expect(out.trim()).toBe('Ship landed');
  });

  it('pods run with their own hostname, and exec passes the exit code', async () => {
    expect((await cli('exec', 'xwing', '--', 'hostname')).stdout.trim()).toBe('xwing');
    expect((await cli('exec', 'xwing', '--', 'sh', '-c', 'exit 7')).code).toBe(7);
    expect(sh('hostname', [])).not.toBe('xwing');
  });

  it('re-applying prints unchanged for every object', async () => {
    const r = await cli('apply', '-f', join(examples, 'starwars', 'http-sw-app.yaml'));
    expect(r.stdout).toBe('service/deathstar unchanged\ndeployment.apps/deathstar unchanged\npod/tiefighter unchanged\npod/xwing unchanged\n');
  });

  it('L3/L4 policy from the examples: xwing is dropped, tiefighter lands', async () => {
    const r = await cli('apply', '-f', join(examples, 'starwars', 'sw_l3_l4_policy.yaml'));
    expect(r.stdout).toBe('ciliumnetworkpolicy.cilium.io/rule1 created\n');
    expect((await cli('get', 'cnp')).stdout).toContain('rule1');
    const { event, result: x } = await agent.expectEvent('?type=drop', 'the xwing SYN dropped by rule1', (e) => e.reason === 133 && / -> [\d.]+:80 tcp SYN$/.test(e.summary),
      () => cli('exec', 'xwing', '--', 'curl', '-s', '--connect-timeout', '1', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing'), { timeoutMs: 15_000 });
    expect(event.summary).toMatch(/^xx drop \(Policy denied\) /);
    expect(x!.code).toBe(28);
    const t = await cli('exec', 'tiefighter', '--', 'curl', '-s', '--max-time', '3', '-XPOST', 'deathstar.default.svc.cluster.local/v1/request-landing');
    expect(t.stdout.trim()).toBe('Ship landed');
    const d = await cli('delete', '-f', join(examples, 'starwars', 'sw_l3_l4_policy.yaml'));
    expect(d.stdout).toBe('ciliumnetworkpolicy.cilium.io "rule1" deleted\n');
  });

  it('scaling the deployment up and down changes the service backends', async () => {
    const text = readFileSync(join(examples, 'starwars', 'http-sw-app.yaml'), 'utf8');
    const backends = async () => (await agent.api('GET', '/v1/services/default/deathstar')).body.frontends[0].backends.length as number;
    const up = await cli('apply', '-f', file('sw3.yaml', text.replace('replicas: 2', 'replicas: 3')));
    expect(up.stdout).toContain('deployment.apps/deathstar configured\n');
    expect(up.stdout).toContain('service/deathstar unchanged\n');
    expect(await backends()).toBe(3);
    expect((await cli('get', 'deploy', 'deathstar')).stdout).toMatch(/deathstar\s+3\/3\s+3\s+3/);
    const down = await cli('apply', '-f', file('sw1.yaml', text.replace('replicas: 2', 'replicas: 1')));
    expect(down.stdout).toContain('deployment.apps/deathstar configured\n');
    expect(await backends()).toBe(1);
    expect((await pods()).filter((p) => p.name.startsWith('deathstar-'))).toHaveLength(1);
    await cli('apply', '-f', join(examples, 'starwars', 'http-sw-app.yaml'));
    expect(await backends()).toBe(2);
  });

  it('a broken manifest changes nothing and names its line', async () => {
    const before = (await pods()).map((p) => p.name).sort();
    const bad = file('bad.yaml', [
      'apiVersion: v1', 'kind: Pod', 'metadata:', '  name: newpod', 'spec:', '  containers:', '  - name: c', '    image: nicolaka/netshoot', // doc 1: fine
      '---', 'apiVersion: v1', 'kind: Pod', 'metadata:', '  name: other', 'spec:', '  containers:', '  - name: c', '    image: nicolaka/netshoot',
      '    imagePullPolicy: Always', '    portz:', '    - containerPort: 80', '',
    ].join('\n'));
    const r = await cli('apply', '-f', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad.yaml: document 2, line 19: Pod "other": ');
    expect(r.stderr).toContain('spec.containers[0].portz');
    expect(r.stderr).toContain('unknown field "portz"');
    expect((await pods()).map((p) => p.name).sort()).toEqual(before);

    const kind = await cli('apply', '-f', file('kind.yaml', 'apiVersion: v1\nkind: Pood\nmetadata:\n  name: x\n'));
    expect(kind.code).toBe(1);
    expect(kind.stderr).toMatch(/line 2: .*no matches for kind "Pood" in version "v1"/);

    const missing = await cli('apply', '-f', file('missing.yaml', 'apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - name: a\n    targetPort: 80\n'));
    expect(missing.stderr).toMatch(/line 7: .*spec\.ports\[0\]\.port: required field is missing/);
  });

  it('the whoami page names the backend pod; anti-affinity that matches keeps a replica Pending', async () => {
    const r = await cli('apply', '-f', join(examples, 'services'));
    expect(r.stdout).toBe('pod/curl-pod created\ndeployment.apps/webpod created\nservice/webpod created\n');
    const webpods = (await pods()).filter((p) => p.name.startsWith('webpod-')).map((p) => p.name);
    expect(webpods).toHaveLength(2);
    const seen = new Set<string>();
    await poll('both backends', async () => {
      const page = await cli('exec', 'curl-pod', '--', 'curl', '-s', '--max-time', '2', 'webpod.default.svc.cluster.local');
      const host = /^Hostname: (\S+)/m.exec(page.stdout)?.[1];
      if (host) {
        expect(webpods).toContain(host);
        seen.add(host);
      }
      return seen.size === 2;
    }, 45_000, 50);

    const anti = file('anti.yaml', readFileSync(join(examples, 'services', 'webpod.yaml'), 'utf8').split('---')[0]
      .replace(/webpod/g, 'lonely').replace('sample-app', 'lonely'));
    expect((await cli('apply', '-f', anti)).stdout).toBe('deployment.apps/lonely created\n');
    const lonely = (await pods()).filter((p) => p.name.startsWith('lonely-'));
    expect(lonely.map((p) => p.status.status).sort()).toEqual(['Pending', 'Running']);
    const table = (await cli('get', 'pods', '-o', 'wide')).stdout;
    expect(table).toMatch(/\nlonely-\S+\s+0\/1\s+Pending\s+0\s+\S+\s+<none>\s+<none>/);
    expect((await cli('get', 'deploy', 'lonely')).stdout).toMatch(/lonely\s+1\/2/);
    expect((await cli('delete', 'deployment', 'lonely')).stdout).toBe('deployment.apps "lonely" deleted\n');
    expect((await pods()).filter((p) => p.name.startsWith('lonely-'))).toHaveLength(0);
  });

  it('logs of a pod, and restarts with backoff', async () => {
    const m = file('logger.yaml', [
      'apiVersion: v1', 'kind: Pod', 'metadata:', '  name: logger', 'spec:', '  restartPolicy: OnFailure', '  containers:', '  - name: c', '    image: nicolaka/netshoot',
      '    command: ["sh", "-c"]', '    args: ["echo hello from $(hostname) $GREETING; exit 3"]', '    env:', '    - name: GREETING', '      value: hi', '',
    ].join('\n'));
    expect((await cli('apply', '-f', m)).stdout).toBe('pod/logger created\n');
    const logs = await poll('two starts in the log', async () => {
      const l = await cli('logs', 'logger');
      return (l.stdout.match(/hello from logger hi/g) ?? []).length >= 2 ? l.stdout : undefined;
    }, 20_000, 200);
    expect(logs).toContain('hello from logger hi\n');
    const p = (await pods()).find((x) => x.name === 'logger')!;
    expect(p.status.restarts).toBeGreaterThanOrEqual(1);
    expect((await cli('describe', 'pod', 'logger')).stdout).toMatch(/Restart Count:\s+[1-9]/);
    expect((await cli('delete', 'pod', 'logger')).stdout).toBe('pod "logger" deleted\n');
  });

  it('pods keep running when the agent is killed; the new agent adopts and restarts them', async () => {
    const m = file('sleeper.yaml', 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: sleeper\nspec:\n  containers:\n  - name: c\n    image: nicolaka/netshoot\n    command: ["sleep", "1000"]\n');
    expect((await cli('apply', '-f', m)).stdout).toBe('pod/sleeper created\n');
    const before = (await pods()).map((p) => p.name).sort();
    const pid = (await pods()).find((p) => p.name === 'sleeper')!.status.pid as number;
    await agent.kill('SIGKILL');
    await agent.start();
    expect(() => process.kill(pid, 0)).not.toThrow();
    expect((await pods()).map((p) => p.name).sort()).toEqual(before);
    expect((await pods()).find((p) => p.name === 'sleeper')!.status.pid).toBe(pid);
    expect((await cli('apply', '-f', join(examples, 'starwars', 'http-sw-app.yaml'))).stdout).not.toContain('created');
    process.kill(-pid, 'SIGKILL');
    const again = await poll('a restarted sleeper', async () => {
      const p = (await pods()).find((x) => x.name === 'sleeper')!;
      return p.status.pid && p.status.pid !== pid ? p : undefined;
    }, 10_000, 200);
    expect(again.status.restarts).toBe(1);
    expect((await cli('delete', 'pod', 'sleeper')).stdout).toBe('pod "sleeper" deleted\n');
  });

  it('namespaces: unknown ones are errors; deleting one deletes its contents', async () => {
    const pod = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p1\n  namespace: team\nspec:\n  containers:\n  - name: c\n    image: nicolaka/netshoot\n';
    const r = await cli('apply', '-f', file('p1.yaml', pod));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/line 5: .*namespaces "team" not found/);
    const ok = await cli('apply', '-f', file('ns.yaml', `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n---\n${pod}`));
    expect(ok.stdout).toBe('namespace/team created\npod/p1 created\n');
    expect((await cli('get', 'ns')).stdout).toMatch(/\nteam\s+Active\s+/);
    expect((await cli('get', 'pods', '-n', 'team')).stdout).toMatch(/\np1\s+1\/1\s+Running/);
    expect((await cli('delete', 'ns', 'team')).stdout).toBe('namespace "team" deleted\n');
    expect((await pods()).filter((p) => p.namespace === 'team')).toHaveLength(0);
  });

  it('delete -f leaves no namespace, process, service or map entry behind', async () => {
    const before = await pods();
    const pids = before.map((p) => p.status.pid as number).filter(Boolean);
    await cli('delete', '-f', join(examples, 'services'));
    const d = await cli('delete', '-f', join(examples, 'starwars', 'http-sw-app.yaml'));
    expect(d.stdout).toBe('service "deathstar" deleted\ndeployment.apps "deathstar" deleted\npod "tiefighter" deleted\npod "xwing" deleted\n');
    expect(await pods()).toEqual([]);
    expect(sh('ip', ['netns', 'list']).split('\n').filter((l) => l.startsWith(`cil-${agent.node}-`) && !l.startsWith(`cil-${agent.node}-kube-system-`))).toEqual([]);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect((await agent.api('GET', '/v1/services/default/deathstar')).status).toBe(404);
    expect(await lxcCount()).toBe(baselineLxc);
    const again = await cli('delete', '-f', join(examples, 'starwars', 'http-sw-app.yaml'));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('Error from server (NotFound): pods "xwing" not found');
  });
});
