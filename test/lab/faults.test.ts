// Faults in a three-node lab over a real etcd, with real traffic (native routing): etcd stopped for
// 20 s (an established connection carries on, new connections work, status says the kvstore fails, a
// pod created meanwhile on w1 runs there at once and, once etcd is back, is listed by the other nodes
// and reachable from them by IP and through a service, with no agent restarted (one with new labels
// waits for its identity, ContainerCreating, and starts then); a Service asked for
// meanwhile is refused naming the kvstore; an agent killed with such writes queued writes them when
// restarted after etcd is back); SIGKILL of a
// worker's agent during a cross-node iperf3 (the transfer completes); a node whose agent was killed
// leaves the others' routes and ipcache within 10 s and cilium_unreachable_nodes counts it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { nsSpawn, requireRoot, sleep, spawnTracked, stop, waitForOutput, waitListening } from '../helpers/sys.ts';
import { HTTP_SERVER, Lab, until, type NodeName } from '../helpers/lab.ts';

const root = requireRoot();
const lab = root ? new Lab('f') : (undefined as unknown as Lab);
const pod = (name: string) => lab.pod(name);
const ECHO_PORT = 7000;
const ECHO_SERVER = ['node', '-e', `require('net').createServer((s)=>s.pipe(s)).listen(${ECHO_PORT})`];
/** Writes each stdin line to one TCP connection and prints what comes back; exits 3 when the connection ends. */
const ECHO_CLIENT = "const s=require('net').connect(+process.argv[2],process.argv[1]);process.stdin.on('data',(d)=>s.write(d));s.on('data',(d)=>process.stdout.write(d));s.on('close',()=>process.exit(3))";
const ETCD_OUTAGE_MS = 20_000;

const serviceYaml = (name: string, app: string) => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec:\n  selector: {app: ${app}}\n  ports: [{port: 80, targetPort: 80}]\n`;
const kvstoreLine = async (node: NodeName) => (await lab.ok(node, 'status')).split('\n').find((l) => l.startsWith('KVStore:')) ?? '';

describe.skipIf(!root)('faults in a three-node lab over etcd', () => {
  const ip: Record<string, string> = {};

  beforeAll(async () => {
    await lab.up(3);
    await lab.ok('k8s-ctr', 'run', pod('client'), '--labels', 'app=client');
    await lab.ok('k8s-w1', 'run', pod('web1'), '--labels', 'app=web1', '--', ...HTTP_SERVER);
    await lab.ok('k8s-w1', 'run', pod('iperf'), '--labels', 'app=iperf', '--', 'iperf3', '-s');
    await lab.ok('k8s-w2', 'run', pod('echo'), '--labels', 'app=echo', '--', ...ECHO_SERVER);
    for (const [node, name] of [['k8s-ctr', 'client'], ['k8s-w1', 'web1'], ['k8s-w1', 'iperf'], ['k8s-w2', 'echo']] as const) ip[name] = await lab.podIP(node, pod(name));
  }, 300_000);

  afterAll(async () => {
    if (root) await lab.down();
  }, 120_000);

  it('etcd stopped for 20 s: an established connection and new ones keep working, status says Failure; the cluster converges after', async () => {
    await waitListening(lab.podNs('k8s-w2', pod('echo')), ECHO_PORT);
    const conn = spawnTracked('ip', ['netns', 'exec', lab.podNs('k8s-ctr', pod('client')), 'node', '-e', ECHO_CLIENT, ip.echo, String(ECHO_PORT)], { stdin: true });
    const say = (word: string) => {
      const echoed = waitForOutput(conn, new RegExp(`^${word}$`), `"${word}" echoed over the established connection`, 10_000);
      conn.stdin!.write(`${word}\n`);
      return echoed;
    };
    const agents = (['k8s-ctr', 'k8s-w1', 'k8s-w2'] as const).map((n) => lab.agentPid(n));
    const late = pod('late');
    const fresh = pod('fresh');
    await lab.ok('k8s-ctr', 'apply', '-f', lab.file('web-svc.yaml', serviceYaml(pod('websvc'), 'web1')));
    const svcIP = (await lab.ok('k8s-ctr', 'get', 'svc', pod('websvc'))).split('\n')[1].split(/\s+/)[2];
    try {
      expect(await say('before')).toBe('before');
      const stopped = await lab.script('etcd', 'stop');
      expect(stopped.code, stopped.stderr).toBe(0);
      const outageEnds = Date.now() + ETCD_OUTAGE_MS;
      expect(await until('KVStore: Failure on k8s-ctr', async () => {
        const line = await kvstoreLine('k8s-ctr');
        return line.includes('Failure') ? line : undefined;
      })).toMatch(/^KVStore: +Failure +Err: /);
      expect(await say('during')).toBe('during');
      expect(await lab.curl('k8s-ctr', pod('client'), `http://${ip.web1}/`)).toBe(`${pod('web1')} ${ip.client}\n`);
      // A pod on w1's own CIDR with labels whose identity w1 knows: created now, its records wait for the store.
      expect(await lab.ok('k8s-w1', 'run', late, '--node', 'k8s-w1', '--labels', 'app=web1', '--', ...HTTP_SERVER)).toBe(`pod/${late} created\n`);
      const lateIP = await lab.podIP('k8s-w1', late);
      expect(lateIP).toMatch(/^172\.20\.1\.\d+$/);
      expect((await lab.ok('k8s-w1', 'get', 'pods', late)).split('\n')[1]).toMatch(new RegExp(`^${late} +1/1 +Running `));
      await waitListening(lab.podNs('k8s-w1', late), 80);
      expect(await lab.curl('k8s-w1', late, `http://${ip.web1}/`)).toBe(`${pod('web1')} ${lateIP}\n`);
      expect(await lab.curl('k8s-w1', pod('web1'), `http://${lateIP}/`)).toBe(`${late} ${ip.web1}\n`);
      // New labels need an identity the cluster agrees on: accepted, the pod waits for the store (Cilium's waiting-for-identity).
      expect(await lab.ok('k8s-w1', 'run', fresh, '--node', 'k8s-w1', '--labels', 'app=fresh', '--', ...HTTP_SERVER)).toBe(`pod/${fresh} created\n`);
      expect((await lab.ok('k8s-w1', 'get', 'pods', fresh)).split('\n')[1]).toMatch(new RegExp(`^${fresh} +0/1 +ContainerCreating `));
      expect(await lab.ok('k8s-w1', 'endpoint', 'list')).toMatch(/^\d+ +Disabled +Disabled +<no label id> +k8s:app=fresh +waiting-for-identity *$/m);
      expect(await kvstoreLine('k8s-w1')).toMatch(/^KVStore: +Failure .*write\(s\) queued for the store/);
      // A Service needs a ClusterIP the cluster agrees on: refused with the reason, nothing half made.
      const svcRefused = await lab.cli('k8s-w1', 'apply', '-f', lab.file('late-svc.yaml', serviceYaml(pod('late-svc'), 'web1')));
      expect(svcRefused.code).not.toBe(0);
      expect(svcRefused.err).toMatch(new RegExp(`Service "${pod('late-svc')}": kvstore etcd unreachable at http://${lab.nodeIP(0).replace(/\./g, '\\.')}:2379`));
      // The outage lasts its 20 s whatever the checks took.
      await sleep(Math.max(0, outageEnds - Date.now()));
      expect(await say('still')).toBe('still');
      const started = await lab.script('etcd', 'start');
      expect(started.code, started.stderr).toBe(0);
      for (const node of ['k8s-ctr', 'k8s-w1', 'k8s-w2'] as const) {
        await until(`KVStore: Ok on ${node}`, async () => ((await kvstoreLine(node)).match(/^KVStore: +Ok /) ? true : undefined), 30_000);
      }
      expect(await until('the queue written to the store', async () => (!(await kvstoreLine('k8s-w1')).includes('queued') ? true : undefined), 30_000)).toBe(true);
      // The other nodes learn the pod: listed, reachable by IP and as a backend of the service selecting it.
      for (const node of ['k8s-ctr', 'k8s-w2'] as const) {
        expect(await until(`the late pod listed on ${node}`, async () => {
          const row = (await lab.ok(node, 'get', 'pods', late, '-o', 'wide')).split('\n')[1];
          return / Running /.test(row) ? row : undefined;
        }, 30_000)).toMatch(new RegExp(`^${late} +1/1 +Running +0 +\\S+ +${lateIP.replace(/\./g, '\\.')} +k8s-w1 `));
      }
      expect(await until('the late pod from w2', () => lab.curl('k8s-w2', pod('echo'), `http://${lateIP}/`), 30_000)).toBe(`${late} ${ip.echo}\n`);
      expect(await until('the late pod from k8s-ctr', () => lab.curl('k8s-ctr', pod('client'), `http://${lateIP}/`), 30_000)).toBe(`${late} ${ip.client}\n`);
      // The pod with new labels got its identity and started; reachable from w2 as well.
      const freshIP = await lab.podIP('k8s-w1', fresh);
      expect(freshIP).toMatch(/^172\.20\.1\.\d+$/);
      await waitListening(lab.podNs('k8s-w1', fresh), 80);
      expect(await until('the new-labels pod from w2', () => lab.curl('k8s-w2', pod('echo'), `http://${freshIP}/`), 30_000)).toBe(`${fresh} ${ip.echo}\n`);
      expect((await lab.ok('k8s-w1', 'get', 'pods', fresh)).split('\n')[1]).toMatch(new RegExp(`^${fresh} +1/1 +Running `));
      // Both web1 and the late pod back the service: asked until the late pod answers.
      expect(await until('the late pod through the service from w2', async () => {
        const body = await lab.curl('k8s-w2', pod('echo'), `http://${svcIP}/`);
        return body?.startsWith(`${late} `) ? body : undefined;
      }, 30_000)).toBe(`${late} ${ip.echo}\n`);
      expect(await say('after')).toBe('after');
      expect(conn.exitCode).toBeNull();
      expect((['k8s-ctr', 'k8s-w1', 'k8s-w2'] as const).map((n) => lab.agentPid(n))).toEqual(agents);
    } finally {
      conn.stdin!.end();
      await stop(conn);
      if (!(await kvstoreLine('k8s-ctr')).includes('Ok')) await lab.script('etcd', 'start');
    }
  }, 180_000);

  it('etcd away and w1\'s agent killed with a pod\'s writes queued: restarted once etcd is back, it writes them and the pod is reachable', async () => {
    const queued = pod('queued');
    let offlineIP: string | undefined;
    const stopped = await lab.script('etcd', 'stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    try {
      await until('KVStore: Failure on w1', async () => ((await kvstoreLine('k8s-w1')).includes('Failure') ? true : undefined));
      expect(await lab.ok('k8s-w1', 'run', queued, '--node', 'k8s-w1', '--labels', 'app=web1', '--', ...HTTP_SERVER)).toBe(`pod/${queued} created\n`);
      offlineIP = await lab.podIP('k8s-w1', queued);
      process.kill(lab.agentPid('k8s-w1'), 'SIGKILL');
    } finally {
      const started = await lab.script('etcd', 'start');
      expect(started.code, started.stderr).toBe(0);
    }
    await until('KVStore: Ok on k8s-ctr', async () => ((await kvstoreLine('k8s-ctr')).match(/^KVStore: +Ok /) ? true : undefined), 30_000);
    const restarted = await lab.script('restart', 'k8s-w1');
    expect(restarted.code, restarted.stderr).toBe(0);
    const row = await until('the queued pod listed on k8s-ctr', async () => {
      const r = (await lab.ok('k8s-ctr', 'get', 'pods', queued, '-o', 'wide')).split('\n')[1];
      return / Running /.test(r) ? r : undefined;
    }, 30_000);
    const queuedIP = row.split(/\s+/)[5];
    expect(row).toMatch(new RegExp(`^${queued} +1/1 +Running .* k8s-w1 `));
    // The address it got offline, from the lease the restarted agent wrote.
    expect(queuedIP).toBe(offlineIP);
    expect(queuedIP).toMatch(/^172\.20\.1\.\d+$/);
    expect(await until('the queued pod from w2', () => lab.curl('k8s-w2', pod('echo'), `http://${queuedIP}/`), 30_000)).toBe(`${queued} ${ip.echo}\n`);
  }, 120_000);

  it('SIGKILL of w1\'s agent during a 15 s iperf3 from k8s-ctr: the transfer completes, the agent comes back', async () => {
    await waitListening(lab.podNs('k8s-w1', pod('iperf')), 5201);
    const transfer: ChildProcess = nsSpawn(lab.podNs('k8s-ctr', pod('client')), ['iperf3', '-c', ip.iperf, '-t', '15', '-i', '1', '--forceflush', '-f', 'm']);
    let out = '';
    transfer.stdout!.on('data', (d) => (out += d));
    const ended = new Promise<number | null>((resolve) => transfer.once('exit', (code) => resolve(code)));
    try {
      // Mid-transfer: after the first second's report.
      await waitForOutput(transfer, /0\.00-1\.00 +sec/, 'the first iperf3 interval', 20_000);
      process.kill(lab.agentPid('k8s-w1'), 'SIGKILL');
      const restarted = await lab.script('restart', 'k8s-w1');
      expect(restarted.code, restarted.stderr).toBe(0);
      expect(await ended, out).toBe(0);
    } finally {
      await stop(transfer);
    }
    const receiver = out.split('\n').find((l) => l.endsWith('receiver')) ?? '';
    const [, seconds, amount, unit] = /0\.00-(\d+\.\d+) +sec +(\d+(?:\.\d+)?) ([KMG]?)Bytes/.exec(receiver) ?? [];
    expect(Number(seconds), out).toBeGreaterThanOrEqual(15);
    expect(Number(amount), `${amount} ${unit}Bytes received`).toBeGreaterThan(0);
    expect(await until('web1 from the client after the restart', () => lab.curl('k8s-ctr', pod('client'), `http://${ip.web1}/`))).toBe(`${pod('web1')} ${ip.client}\n`);
  }, 120_000);

  it('w2\'s agent killed: within 10 s its routes and ipcache entries are gone on the others, cilium_unreachable_nodes counts it; back after a restart', async () => {
    expect(await lab.metric('k8s-ctr', 'cilium_unreachable_nodes')).toBe(0);
    process.kill(lab.agentPid('k8s-w2'), 'SIGKILL');
    const killed = Date.now();
    await until('w2 gone from k8s-ctr and w1', async () => {
      for (const node of ['k8s-ctr', 'k8s-w1'] as const) {
        const list = await lab.ok(node, 'bpf', 'ipcache', 'list');
        if (list.includes(`${ip.echo}/32`) || list.includes(`${lab.nodeIP(2)}/32`) || lab.routes(node).includes('172.20.2.0/24')) return undefined;
        if ((await lab.metric(node, 'cilium_unreachable_nodes')) !== 1) return undefined;
      }
      return true;
    }, 10_000);
    expect(Date.now() - killed).toBeLessThan(10_000);
    expect(await lab.curl('k8s-ctr', pod('client'), `http://${ip.web1}/`)).toBe(`${pod('web1')} ${ip.client}\n`);

    const restarted = await lab.script('restart', 'k8s-w2');
    expect(restarted.code, restarted.stderr).toBe(0);
    await until('w2 back on k8s-ctr', async () => (lab.routes('k8s-ctr').includes(`172.20.2.0/24 via ${lab.nodeIP(2)}`) && (await lab.metric('k8s-ctr', 'cilium_unreachable_nodes')) === 0 ? true : undefined), 30_000);
    await waitListening(lab.podNs('k8s-w2', pod('echo')), ECHO_PORT);
    const r = await lab.exec('k8s-ctr', pod('client'), ['sh', '-c', `echo hi | nc -q 1 -w 2 ${ip.echo} ${ECHO_PORT}`]);
    expect(r.stdout).toBe('hi\n');
  }, 120_000);
});
