// The Vagrantfile: `vagrant validate` (no provider needed), Ruby's syntax check, and what it makes each
// VM run, read by Ruby itself with a stand-in Vagrant module: three VMs, etcd on k8s-ctr, every agent
// joining it with the same cluster token, the relay on k8s-ctr over the three nodes.
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const vagrantfile = join(repo, 'Vagrantfile');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const hasVagrant = has('vagrant');
const hasRuby = has('ruby');
if (!hasVagrant) console.warn('\n*** SKIPPING `vagrant validate` (test/unit/vagrantfile.test.ts): vagrant is not installed (apt-get install vagrant; scripts/bootstrap.sh does) ***\n');
if (!hasRuby) console.warn('\n*** SKIPPING the Vagrantfile Ruby checks (test/unit/vagrantfile.test.ts): ruby is not installed ***\n');

const tmp = mkdtempSync(join(tmpdir(), 'ciliary-vagrantfile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
// Keep vagrant's dot dir (machine state, the cluster token) out of the repository.
const env = { ...process.env, VAGRANT_CWD: repo, VAGRANT_DOTFILE_PATH: join(tmp, 'dot') };

/** What `vagrant up` would do, as JSON: each VM's name, IP and provisioning script and environment. */
const DUMP = `
require "json"
module Vagrant
  class Stub
    def initialize(log, name = nil) @log, @name = log, name end
    def method_missing(m, *args, **kw, &blk)
      case m
      when :define then vm = { "name" => args[0] }; @log << vm; blk.call(Stub.new(@log, vm))
      when :network then @name["ip"] = kw[:ip]
      when :provision then @name["script"] = kw[:inline]; @name["env"] = kw[:env]
      when :provider then nil
      end
      self
    end
    def respond_to_missing?(*) true end
  end
  def self.configure(_) log = []; yield Stub.new(log); puts JSON.generate(log) end
end
load ARGV[0]
`;

describe('Vagrantfile', () => {
  it.skipIf(!hasVagrant)('vagrant validate accepts it', () => {
    const r = spawnSync('vagrant', ['validate', '--ignore-provider'], { env, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Vagrantfile validated successfully.');
  });

  it.skipIf(!hasRuby)('is valid Ruby', () => {
    const r = spawnSync('ruby', ['-c', vagrantfile], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toContain('Syntax OK');
  });

  it.skipIf(!hasRuby)('three VMs; etcd on k8s-ctr; every agent joins it with one cluster token; the relay on k8s-ctr over all three', () => {
    const r = spawnSync('ruby', ['-e', DUMP, vagrantfile], { env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const vms = JSON.parse(r.stdout) as Array<{ name: string; ip: string; script: string; env: Record<string, string> }>;
    expect(vms.map((v) => [v.name, v.ip])).toEqual([['k8s-ctr', '192.168.10.100'], ['k8s-w1', '192.168.10.101'], ['k8s-w2', '192.168.10.102']]);
    const agent = (v: (typeof vms)[number]) => /^ExecStart=(.*)$/m.exec(v.script)![1];
    for (const v of vms) {
      expect(agent(v)).toContain(`--node-name ${v.name} --node-ip ${v.ip} --kvstore etcd --kvstore-opt etcd.address=http://192.168.10.100:2379`);
      expect(agent(v)).toContain('--routing-mode native --auto-direct-node-routes=true --ipv4-native-routing-cidr 172.20.0.0/16');
      expect(agent(v)).toContain('--cluster-api-address :9876');
      expect(v.script).toContain('ExecStartPre=/usr/bin/install -D -m 0600 /etc/ciliary/cluster-token /run/ciliary/cluster-token');
      expect(v.env.CILIARY_CLUSTER_TOKEN).toMatch(/^[0-9a-f]{64}$/);
      expect(v.env.CILIARY_CLUSTER_TOKEN).toBe(vms[0].env.CILIARY_CLUSTER_TOKEN);
    }
    const [ctr, w1] = vms;
    expect(ctr.script).toContain('ETCD_LISTEN_CLIENT_URLS=http://192.168.10.100:2379,http://127.0.0.1:2379');
    expect(ctr.script).toContain('systemctl restart etcd.service');
    expect(w1.script).not.toContain('etcd.service');
    expect(agent(ctr)).toContain('--hubble-relay-listen-address :4245 --hubble-relay-peers 192.168.10.100:4244,192.168.10.101:4244,192.168.10.102:4244');
    expect(agent(ctr)).toContain('--kube-apiserver-listen-address 192.168.10.100:6443');
    expect(agent(w1)).not.toContain('relay');
  });
});
