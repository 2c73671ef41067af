// Every agent of a two-node VXLAN lab restarted (SIGTERM, then cluster.sh up), and then the process of
// a pod on w1 restarted (its endpoint record saved again): k8s-ctr's ipcache keeps the pod behind w1's
// node IP (tunnelendpoint, not 0.0.0.0, which dropped with 151 Unroutable) and a curl through the tunnel answers.
// The lab carries a per-run prefix, net and state root.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, sh } from '../helpers/sys.ts';
import { HTTP_SERVER, Lab, until } from '../helpers/lab.ts';

const root = requireRoot();
const lab = root ? new Lab('r') : (undefined as unknown as Lab);

describe.skipIf(!root)('tunnel endpoints across a restart of every agent', () => {
  let webIP = '';
  beforeAll(async () => {
    await lab.up(2, '--routing-mode', 'tunnel');
    webIP = await lab.runPod('k8s-w1', lab.pod('web'), 'app=web', HTTP_SERVER);
    await lab.ok('k8s-ctr', 'run', lab.pod('client'), '--labels', 'app=client');
  }, 300_000);

  afterAll(async () => {
    if (root) await lab.down();
  }, 120_000);

  const curl = () => lab.curl('k8s-ctr', lab.pod('client'), `http://${webIP}/`);
  const entry = async () => Lab.ipcacheEntry(await lab.ok('k8s-ctr', 'bpf', 'ipcache', 'list'), `${webIP}/32`);

  it('after all agents restart and the remote pod\'s process restarts, its entry still names w1 and the curl answers', async () => {
    expect(await until('the first curl through the tunnel', curl)).toMatch(new RegExp(`^${lab.pod('web')} `));
    await lab.stopAgent('k8s-ctr');
    await lab.stopAgent('k8s-w1');
    const up = await lab.script('up', '2', '--routing-mode', 'tunnel');
    expect(up.code, up.stderr).toBe(0);
    // The pod's server killed: its agent starts it again and saves the pod's endpoint record twice.
    // A stopped agent ends its pods' processes; the new one starts them again in its own time.
    const pids = await until('the web pod\'s process back', async () => {
      const found = sh('ip', ['netns', 'pids', lab.podNs('k8s-w1', lab.pod('web'))]).split('\n').filter(Boolean);
      return found.length > 0 ? found : undefined;
    }, 30_000);
    for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
    await until('the web pod restarted', async () => {
      const row = (await lab.ok('k8s-w1', 'get', 'pods', lab.pod('web'))).split('\n')[1]?.split(/\s+/);
      return row && row[2] === 'Running' && Number(row[3]) >= 1 ? true : undefined;
    }, 30_000);
    expect(await until('a curl through the tunnel after the restarts', curl)).toMatch(new RegExp(`^${lab.pod('web')} `));
    expect(await entry()).toMatch(new RegExp(`^identity=\\d+ encryptkey=0 tunnelendpoint=${lab.nodeIP(1).replace(/\./g, '\\.')}$`));
  }, 180_000);
});
