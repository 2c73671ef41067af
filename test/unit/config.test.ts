// Agent configuration: defaults, file < env < flags, and errors that name the key.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG_KEYS, ConfigError, closestKey, configUsage, defaultConfig, loadConfig } from '../../src/control/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'ciliary-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function yamlFile(text: string): string {
  const p = join(dir, `c${n++}.yaml`);
  writeFileSync(p, text);
  return p;
}
function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('has Cilium defaults and derived paths from the hostname', () => {
    const c = loadConfig([]);
    expect(c['node-name']).toBe(hostname());
    expect(c['state-dir']).toBe(`/run/ciliary/${hostname()}`);
    expect(c['api-socket']).toBe(`/run/ciliary/${hostname()}/agent.sock`);
    expect(c).toMatchObject({
      'api-port': 0, 'cluster-name': 'default', 'cluster-id': 0, 'cluster-pool-ipv4-cidr': '172.20.0.0/16', 'cluster-pool-ipv4-mask-size': 24,
      'ipv4-pod-cidr': '', 'service-cluster-ip-range': '10.96.0.0/16', 'routing-mode': 'native', 'tunnel-protocol': 'vxlan', 'tunnel-port': 8472,
      'enable-ipv4-masquerade': true, 'enable-bpf-masquerade': true, 'enable-ip-masq-agent': false, 'policy-enforcement-mode': 'default',
      'enable-l7-proxy': true, 'enable-hubble': true, 'hubble-event-buffer-capacity': 4095, 'hubble-listen-address': ':4244',
      'hubble-metrics-server': ':9965', 'prometheus-serve-addr': ':9962', 'bpf-lb-algorithm': 'random', 'bpf-lb-maglev-table-size': 16381,
      'bpf-lb-map-max': 65536, 'bpf-ct-global-tcp-max': 524288, 'bpf-ct-global-any-max': 262144, 'bpf-nat-global-max': 524288,
      'bpf-policy-map-max': 16384, 'bpf-ct-timeout-regular-tcp': 21600, 'bpf-ct-timeout-regular-tcp-syn': 60, 'bpf-ct-timeout-regular-tcp-fin': 10,
      'bpf-ct-timeout-regular-any': 60, 'bpf-ct-timeout-service-tcp': 21600, 'bpf-ct-timeout-service-any': 60, 'enable-bandwidth-manager': false, 'bpf-bandwidth-horizon': '2s',
      kvstore: '', 'kvstore-opt': {}, mtu: 1500, 'enable-offloads': true, debug: false, 'log-format': 'auto', 'monitor-queue-size': 65536,
    });
    expect(defaultConfig('k8s-w1')['api-socket']).toBe('/run/ciliary/k8s-w1/agent.sock');
    expect(Object.keys(c).sort()).toEqual(CONFIG_KEYS.map((k) => k.key).sort());
  });

  it('derives state-dir and api-socket from a given node-name unless set', () => {
    expect(loadConfig(['--node-name', 'k8s-ctr'])).toMatchObject({ 'state-dir': '/run/ciliary/k8s-ctr', 'api-socket': '/run/ciliary/k8s-ctr/agent.sock' });
    expect(loadConfig(['--node-name=k8s-ctr', '--state-dir=/tmp/x'])['api-socket']).toBe('/tmp/x/agent.sock');
  });

  it('documents every key', () => {
    const u = configUsage();
    for (const k of CONFIG_KEYS) expect(u).toContain(`--${k.key}`);
  });
});

describe('file, env and flags', () => {
  it('reads YAML (Cilium ConfigMap style strings too) and lets flags override', () => {
    const f = yamlFile([
      'node-name: k8s-w1', 'routing-mode: native', 'ipv4-native-routing-cidr: 172.20.0.0/16', 'tunnel-port: "8473"',
      'enable-hubble: "false"', 'debug: true', 'kvstore: etcd', 'kvstore-opt:', '  etcd.address: http://192.168.10.100:2379', '',
    ].join('\n'));
    const c = loadConfig(['--config', f, '--routing-mode=tunnel', '--debug=false', '--mtu', '1400']);
    expect(c).toMatchObject({
      config: f, 'node-name': 'k8s-w1', 'routing-mode': 'tunnel', 'ipv4-native-routing-cidr': '172.20.0.0/16', 'tunnel-port': 8473,
      'enable-hubble': false, debug: false, mtu: 1400, kvstore: 'etcd', 'kvstore-opt': { 'etcd.address': 'http://192.168.10.100:2379' },
      'state-dir': '/run/ciliary/k8s-w1',
    });
  });

  it('takes env CILIARY_<KEY> between file and flags, and CILIARY_CONFIG as the file', () => {
    const f = yamlFile('mtu: 1400\ncluster-name: from-file\n');
    const c = loadConfig(['--cluster-name=from-flag'], { CILIARY_CONFIG: f, CILIARY_MTU: '1300', CILIARY_CLUSTER_NAME: 'from-env', CILIARY_NODE: 'ignored' });
    expect(c).toMatchObject({ mtu: 1300, 'cluster-name': 'from-flag', config: f });
  });

  it('accepts boolean flags bare or with =false, and map flags repeated or comma-separated', () => {
    expect(loadConfig(['--enable-bandwidth-manager'])['enable-bandwidth-manager']).toBe(true);
    expect(loadConfig(['--enable-l7-proxy=false'])['enable-l7-proxy']).toBe(false);
    const c = loadConfig(['--kvstore-opt', 'etcd.address=http://a:2379,etcd.x=1', '--kvstore-opt=etcd.y=2']);
    expect(c['kvstore-opt']).toEqual({ 'etcd.address': 'http://a:2379', 'etcd.x': '1', 'etcd.y': '2' });
  });

  it('treats an empty file as no settings', () => {
    expect(loadConfig(['--config', yamlFile('# nothing\n')]).mtu).toBe(1500);
  });
});

describe('errors name the key', () => {
  it('unknown flag, with a suggestion', () => {
    const e = errorOf(() => loadConfig(['--routing-mod=tunnel']));
    expect(e.key).toBe('routing-mod');
    expect(e.message).toContain('unknown configuration key "routing-mod" (flag --routing-mod); did you mean "routing-mode"?');
    expect(closestKey('enable-hubbel')).toBe('enable-hubble');
    expect(closestKey('bpf-ct-timeout-tcp')).toBe('bpf-ct-timeout-regular-tcp');
  });

  it('unknown file key, with the line and a suggestion', () => {
    const f = yamlFile('mtu: 1500\n\ntunel-port: 8472\n');
    const e = errorOf(() => loadConfig(['--config', f]));
    expect(e.key).toBe('tunel-port');
    expect(e.message).toContain(`(${f} line 3)`);
    expect(e.message).toContain('did you mean "tunnel-port"?');
  });

  it('bad values in the file name the key and line', () => {
    const f = yamlFile('debug: true\nrouting-mode: bogus\n');
    const e = errorOf(() => loadConfig(['--config', f]));
    expect(e.key).toBe('routing-mode');
    expect(e.message).toBe(`routing-mode: "bogus" is not one of tunnel, native (${f} line 2)`);
  });

  it.each([
    [['--routing-mode', 'bogus'], 'routing-mode', 'is not one of tunnel, native'],
    [['--tunnel-protocol=geneve'], 'tunnel-protocol', 'is not one of vxlan'],
    [['--cluster-pool-ipv4-cidr=10.0.0.0/33'], 'cluster-pool-ipv4-cidr', 'is not an IPv4 CIDR'],
    [['--cluster-pool-ipv4-cidr=10.0.0.1/16'], 'cluster-pool-ipv4-cidr', 'has host bits set (did you mean 10.0.0.0/16?)'],
    [['--service-cluster-ip-range=banana'], 'service-cluster-ip-range', 'is not an IPv4 CIDR'],
    [['--ipv4-pod-cidr=300.1.1.0/24'], 'ipv4-pod-cidr', 'is not an IPv4 CIDR'],
    [['--node-ip=1.2.3'], 'node-ip', 'is not an IPv4 address'],
    [['--mtu=big'], 'mtu', 'is not a whole number'],
    [['--mtu=1.5'], 'mtu', 'is not a whole number'],
    [['--mtu=20'], 'mtu', 'is out of range 68..65535'],
    [['--api-port=70000'], 'api-port', 'is out of range'],
    [['--debug=yes'], 'debug', 'is not true or false'],
    [['--policy-enforcement-mode=sometimes'], 'policy-enforcement-mode', 'is not one of default, always, never'],
    [['--bpf-lb-algorithm=roundrobin'], 'bpf-lb-algorithm', 'is not one of random, maglev'],
    [['--log-format=xml'], 'log-format', 'is not one of json, pretty, auto'],
    [['--kvstore=consul'], 'kvstore', "is not one of '', local, etcd"],
    [['--kvstore-opt=novalue'], 'kvstore-opt', 'is not a list of key=value'],
    [['--kvstore=etcd'], 'kvstore-opt', 'needs etcd.address'],
    [['--cluster-pool-ipv4-mask-size=8'], 'cluster-pool-ipv4-mask-size', "shorter than the pool's prefix /16"],
    [['--mtu'], 'mtu', 'needs a value'],
    [['stray'], 'stray', 'unexpected argument'],
  ])('%j → %s', (argv, key, msg) => {
    const e = errorOf(() => loadConfig(argv as string[]));
    expect(e.key).toBe(key);
    expect(e.message).toContain(key);
    expect(e.message).toContain(msg);
  });

  it('wrong types in YAML', () => {
    const cases: Array<[string, string, string]> = [
      ['mtu: [1500]\n', 'mtu', 'is not a whole number'],
      ['kvstore-opt: [a]\n', 'kvstore-opt', 'is not a map'],
      ['node-name: {a: 1}\n', 'node-name', 'is not a string'],
      ['enable-hubble: 1\n', 'enable-hubble', 'is not true or false'],
    ];
    for (const [text, key, msg] of cases) {
      const e = errorOf(() => loadConfig(['--config', yamlFile(text)]));
      expect(e.key).toBe(key);
      expect(e.message).toContain(msg);
      expect(e.message).toContain('line 1');
    }
  });

  it('unreadable or malformed files name the config key', () => {
    expect(errorOf(() => loadConfig(['--config', join(dir, 'missing.yaml')])).key).toBe('config');
    expect(errorOf(() => loadConfig(['--config', yamlFile('a: [\n')])).key).toBe('config');
    expect(errorOf(() => loadConfig(['--config', yamlFile('- a\n- b\n')])).message).toContain('expected a mapping');
    expect(errorOf(() => loadConfig(['--config', yamlFile('mtu: 1\nmtu: 2\n')])).key).toBe('config');
  });
});
