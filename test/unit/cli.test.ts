// The ciliary CLI: pure formatters against REFERENCE.md shapes, argument handling, and real runs against the agent core.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiServer } from '../../src/api/index.ts';
import { parseArgs } from '../../src/cli/args.ts';
import { BPF_LISTS, formatBpfList, formatLbList, formatMapGet, formatMapList, formatPolicyGetAll, policyMapPath } from '../../src/cli/bpf.ts';
import { formatIdentityEndpoints, formatIdentityList, formatIpList } from '../../src/cli/identity.ts';
import {
  formatImportResult, formatPodSelector, formatPoliciesTable, formatPolicyGet, formatPolicyGetOutput, locateImportError, parsePolicyFile, policyKindOf, resourceName,
} from '../../src/cli/policy.ts';
import { resolveTarget } from '../../src/cli/client.ts';
import { formatEndpointList } from '../../src/cli/endpoint.ts';
import { main } from '../../src/cli/main.ts';
import { formatMonitorEvent, hexDump } from '../../src/cli/monitor.ts';
import { exitStatus, formatPodsTable, humanAge, parseLabels, podsJson } from '../../src/cli/pods.ts';
import {
  commonLabels, formatExternalIP, formatPorts, formatSelector, formatServiceList, formatServicesTable, namePorts, parsePortSpec,
} from '../../src/cli/services.ts';
import { cidrCapacity, formatStatus } from '../../src/cli/status.ts';
import { addressOrder, formatTable } from '../../src/cli/table.ts';
import type { AgentStatus, Endpoint, MapSummary, MonitorEvent, Pod, PolicyImportResult, PolicySummary, Service, ServiceFrontend } from '../../src/control/types.ts';
import type { Agent } from '../../src/agent/agent.ts';
import { startAgentCore, tapMonitor, type MonitorTap } from './agent-core.ts';

const repo = join(import.meta.dirname, '..', '..');
const reference = readFileSync(join(repo, '..', 'shared', 'REFERENCE.md'), 'utf8');
/** The fenced block after a `title`: line of REFERENCE.md. */
function refBlock(title: string): string[] {
  const at = reference.indexOf(`${title}:\n\`\`\`\n`);
  // A title with a note after it (`status --verbose` (excerpt; ...):): its block follows the note.
  const start = at >= 0 ? at : reference.indexOf(title.replace(/\)$/, ''));
  if (start < 0) throw new Error(`no block ${title}`);
  const body = reference.slice(reference.indexOf('```\n', start) + 4);
  return body.slice(0, body.indexOf('```')).trimEnd().split('\n');
}
const lines = (s: string) => s.trimEnd().split('\n');

const T0 = Date.parse('2025-07-25T17:00:00Z');
function pod(name: string, extra: Partial<Pod> = {}): Pod {
  return {
    name, namespace: 'default', labels: {}, node: 'k8s-ctr', podIP: '172.20.0.10', endpointID: 312, state: 'ready',
    netns: `ciliary-default-${name}`, ifindex: 2, createdAt: new Date(T0).toISOString(), ...extra,
  };
}

describe('table', () => {
  it('pads every column but the last to its widest cell plus 3, with no trailing spaces', () => {
    expect(formatTable([['A', 'BB', 'C'], ['aaaa', '', 'c'], ['x', 'y', '']])).toBe('A      BB   C\naaaa        c\nx      y\n');
    expect(formatTable([['IPv6', 'x'], ['', 'y']], { minWidth: 8 })).toBe('IPv6    x\n        y\n');
  });
  it('orders addresses numerically', () => {
    expect(['10.1.5.0/24', '0.0.0.0/0', '10.0.0.130/32', '9.0.0.0/8', '10.0.0.130/24'].sort(addressOrder))
      .toEqual(['0.0.0.0/0', '9.0.0.0/8', '10.0.0.130/24', '10.0.0.130/32', '10.1.5.0/24']);
  });
});

describe('get pods formatting', () => {
  it('prints kubectl columns, NAMESPACE with -A and IP NODE with wide', () => {
    const pods = [pod('xwing', { createdAt: new Date(T0 - 300_000).toISOString() }), pod('deathstar-8c4c77fb7-nnzkt', { state: 'regenerating', podIP: '172.20.0.66' }), pod('db', { namespace: 'kube-system' })];
    expect(formatPodsTable(pods.slice(0, 2), { now: T0 + 45_000 })).toBe([
      'NAME                        READY   STATUS              RESTARTS   AGE',
      'deathstar-8c4c77fb7-nnzkt   0/1     ContainerCreating   0          45s',
      'xwing                       1/1     Running             0          5m45s',
      '',
    ].join('\n'));
    expect(lines(formatPodsTable(pods, { now: T0, allNamespaces: true, wide: true }))).toEqual([
      'NAMESPACE     NAME                        READY   STATUS              RESTARTS   AGE   IP            NODE',
      'default       deathstar-8c4c77fb7-nnzkt   0/1     ContainerCreating   0          0s    172.20.0.66   k8s-ctr',
      'default       xwing                       1/1     Running             0          5m    172.20.0.10   k8s-ctr',
      'kube-system   db                          1/1     Running             0          0s    172.20.0.10   k8s-ctr',
    ]);
  });
  it('ages like kubectl', () => {
    expect([0, 119, 120, 185, 600, 3 * 3600 + 1200, 7 * 3600, 30 * 3600, 50 * 3600, 9 * 86400, 800 * 86400].map(humanAge))
      .toEqual(['0s', '119s', '2m', '3m5s', '10m', '3h20m', '7h', '30h', '2d2h', '9d', '2y70d']);
  });
  it('json lists the fields scripts use', () => {
    const out = JSON.parse(podsJson([pod('xwing', { labels: { org: 'alliance' }, pid: 5 })]));
    expect(out).toEqual([{ name: 'xwing', namespace: 'default', labels: { org: 'alliance' }, node: 'k8s-ctr', podIP: '172.20.0.10', endpointID: 312, state: 'ready' }]);
  });
  it('parses labels and exit statuses', () => {
    expect(parseLabels('org=empire, class=deathstar,app.kubernetes.io/name=x=y')).toEqual({ org: 'empire', class: 'deathstar', 'app.kubernetes.io/name': 'x=y' });
    expect(() => parseLabels('org')).toThrow(/not key=value/);
    expect(exitStatus(3, null)).toBe(3);
    expect(exitStatus(null, 'SIGKILL')).toBe(137);
    expect(exitStatus(null, 'SIGINT')).toBe(130);
  });
});

describe('endpoint list formatting (REFERENCE.md)', () => {
  const xwingLabels = [
    'k8s:class=xwing',
    'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default',
    'k8s:io.cilium.k8s.policy.cluster=default',
    'k8s:io.cilium.k8s.policy.serviceaccount=default',
    'k8s:io.kubernetes.pod.namespace=default',
    'k8s:org=alliance',
  ];
  const eps: Endpoint[] = [
    { id: 1972, podName: 'default/deathstar', identity: 21144, labels: ['k8s:class=deathstar', 'k8s:org=empire'], ipv4: '172.16.2.66', ifindex: 3, ifname: 'lxc1', state: 'ready', policyIngress: 'Enabled', policyEgress: 'Disabled', isHost: false },
    { id: 312, podName: 'default/xwing', identity: 18300, labels: xwingLabels, ipv4: '172.16.2.161', ifindex: 2, ifname: 'lxc0', state: 'ready', policyIngress: 'Disabled', policyEgress: 'Disabled', isHost: false },
  ];
  const out = lines(formatEndpointList(eps));
  const ref = refBlock('`endpoint list`');

  it('has the reference header, columns and one label per line', () => {
    // Up to the LABELS column the layout is the reference's exactly.
    const upToLabels = ref[0].indexOf('LABELS');
    expect(out[0].slice(0, upToLabels)).toBe(ref[0].slice(0, upToLabels));
    expect(out[1]).toBe(ref[1]);
    expect(out[2].slice(0, upToLabels)).toBe(ref[2].slice(0, upToLabels));
    expect(out[3].slice(0, upToLabels + 'k8s:io.cilium'.length)).toBe(ref[3].slice(0, upToLabels + 'k8s:io.cilium'.length));
    // Labels column as wide as the widest label + 3, then IPv6 (empty, 7 wide), IPv4 (15), STATUS.
    const ipv6At = upToLabels + Math.max(...xwingLabels.map((l) => l.length)) + 3;
    expect(out[0].slice(upToLabels)).toBe('LABELS (source:key[=value])'.padEnd(ipv6At - upToLabels) + 'IPv6   IPv4           STATUS');
    expect(out[2]).toBe(ref[2].slice(0, upToLabels) + 'k8s:class=xwing'.padEnd(ipv6At - upToLabels) + '       172.16.2.161   ready');
    expect(out.slice(3, 8)).toEqual(xwingLabels.slice(1).map((l) => ' '.repeat(upToLabels) + l));
    expect(out[8].slice(0, upToLabels)).toBe(ref.find((l) => l.startsWith('1972'))!.slice(0, upToLabels));
    expect(out[8].endsWith('       172.16.2.66    ready')).toBe(true);
    expect(out).toHaveLength(2 + 6 + 2);
  });
});

describe('bpf list formatting (REFERENCE.md)', () => {
  it('ipcache list', () => {
    const ref = refBlock('`bpf ipcache list`');
    const entries = ref.slice(1).map((l) => ({ key: l.split(/\s+/)[0], value: l.slice(l.indexOf('identity=')) }));
    const out = lines(formatBpfList(BPF_LISTS.ipcache.titles, entries));
    expect(out[0]).toBe(ref[0]);
    expect(out.slice(1)).toEqual([ref[3], ref[2], ref[1]]); // numeric order
  });
  it('endpoint list', () => {
    const ref = refBlock('`bpf endpoint list`');
    const value = 'id=1583  flags=0x0000 ifindex=12  mac=F2:78:5C:6D:DE:3F nodemac=36:C7:3C:43:0A:17';
    const out = lines(formatBpfList(BPF_LISTS.endpoint.titles, [{ key: '10.242.0.178:0', value }, { key: '192.168.10.100:0', value: '(localhost)' }]));
    expect(out).toEqual([ref[0], ref[1], '192.168.10.100:0   (localhost)']);
  });
  it('map list and map get', () => {
    const maps: MapSummary[] = [
      { name: 'cilium_lxc', type: 'hash', keySize: 4, valueSize: 32, maxEntries: 65535, count: 3, pressure: 3 / 65535 },
      { name: 'cilium_ipcache', type: 'lpm_trie', keySize: 8, valueSize: 12, maxEntries: 512000, count: 256000, pressure: 0.5 },
    ];
    expect(lines(formatMapList(maps))).toEqual([
      'Name             Num entries   Num errors   Cache enabled   Max entries   Pressure',
      'cilium_ipcache   256000        0            true            512000        50.00%',
      'cilium_lxc       3             0            true            65535         0.00%',
    ]);
    expect(lines(formatMapList(maps, true))[0]).toBe('Name             Num entries   Num errors   Cache enabled   Max entries   Pressure   Type       Key size   Value size');
    expect(lines(formatMapGet([{ key: '10.0.0.1/32', value: 'identity=1' }]))).toEqual(['Key           Value        State   Error', '10.0.0.1/32   identity=1   sync']);
  });
});

function svc(name: string, extra: Partial<Service> = {}): Service {
  return { name, namespace: 'default', type: 'ClusterIP', selector: {}, ports: [{ port: 80, protocol: 'TCP' }], clusterIP: '10.96.0.10', frontends: [], createdAt: new Date(T0).toISOString(), ...extra };
}
function fe(id: number, address: string, port: number, type: string, backends: Array<[string, number, ('active' | 'terminating')?]>): ServiceFrontend {
  return { id, address, port, protocol: 'TCP', type, backends: backends.map(([ip, p, state], i) => ({ id: i + 1, ip, port: p, pod: '', state: state ?? 'active' })) };
}

describe('service formatting (REFERENCE.md)', () => {
  it('service list: the reference rows, backends numbered under the Backend column, sorted by ID', () => {
    const ref = refBlock('`service list`');
    const web = svc('svc', {
      type: 'NodePort', clusterIP: '10.108.12.195', ports: [{ port: 80, nodePort: 30080 }],
      frontends: [
        // The reference's Frontend column is 22 wide: a 19-character frontend (a NodePort one here) sets it.
        fe(17, '192.168.10.10', 30080, 'NodePort', [['172.16.2.157', 80], ['172.16.1.234', 80, 'terminating']]),
        fe(16, '10.108.12.195', 80, 'ClusterIP', [['172.16.2.157', 80], ['172.16.1.234', 80]]),
      ],
    });
    const empty = svc('empty', { clusterIP: '10.96.0.20', frontends: [fe(3, '10.96.0.20', 53, 'ClusterIP', [])] });
    const out = lines(formatServiceList([web, empty]));
    expect(out.slice(0, 1)).toEqual(ref.slice(0, 1));
    expect(out[1]).toBe('3    10.96.0.20:53         ClusterIP');
    expect(out.slice(2, 4)).toEqual(ref.slice(1, 3));
    expect(out.slice(4)).toEqual([
      '17   192.168.10.10:30080   NodePort       1 => 172.16.2.157:80',
      '                                          2 => 172.16.1.234:80 (terminating)',
    ]);
    expect(lines(formatServiceList([]))).toEqual(['ID   Frontend   Service Type   Backend']);
  });

  it('bpf lb list: the reference rows, and --revnat', () => {
    const ref = refBlock('`bpf lb list`');
    const rows: Array<[string, string]> = [
      ['10.108.12.195:80', '0.0.0.0:0 (16) [ClusterIP, non-routable]'], ['', '172.16.1.234:80 (16)'], ['', '172.16.2.157:80 (16)'],
      ['192.168.10.10:30080', '0.0.0.0:0 (17) [NodePort]'], ['', '172.16.2.157:80 (17)'],
    ];
    const out = lines(formatLbList(rows));
    expect(out.slice(0, 4)).toEqual(ref);
    expect(out.slice(4)).toEqual(['192.168.10.10:30080   0.0.0.0:0 (17) [NodePort]', '                      172.16.2.157:80 (17)']);
    expect(lines(formatLbList([['16', '10.108.12.195:80'], ['17', '192.168.10.10:30080']], true))).toEqual([
      'ID   SERVICE ADDRESS', '16   10.108.12.195:80', '17   192.168.10.10:30080',
    ]);
  });

  it('get svc: kubectl columns, NAMESPACE with -A, SELECTOR with wide', () => {
    const svcs = [
      svc('webpod', { clusterIP: '10.96.166.184', selector: { app: 'webpod' }, createdAt: new Date(T0 - 300_000).toISOString() }),
      svc('deathstar', { clusterIP: '10.96.43.209', selector: { org: 'empire', class: 'deathstar' } }),
      svc('np', { type: 'NodePort', clusterIP: '10.96.0.50', ports: [{ name: 'http', port: 80, nodePort: 31234 }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }] }),
      svc('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.60', ports: [{ port: 80 }], frontends: [fe(9, '10.96.0.60', 80, 'ClusterIP', []), fe(10, '192.168.10.100', 32000, 'NodePort', []), fe(11, '10.10.200.1', 80, 'LoadBalancer', [])] }),
      svc('dns', { namespace: 'kube-system', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }], externalIPs: ['192.168.10.53'] }),
    ];
    expect(formatServicesTable(svcs.slice(0, 4), { now: T0 + 45_000 })).toBe([
      'NAME        TYPE           CLUSTER-IP      EXTERNAL-IP   PORT(S)                     AGE',
      'deathstar   ClusterIP      10.96.43.209    <none>        80/TCP                      45s',
      'lb          LoadBalancer   10.96.0.60      10.10.200.1   80:32000/TCP                45s',
      'np          NodePort       10.96.0.50      <none>        80:31234/TCP,53:30053/UDP   45s',
      'webpod      ClusterIP      10.96.166.184   <none>        80/TCP                      5m45s',
      '',
    ].join('\n'));
    expect(lines(formatServicesTable([svcs[1], svcs[4]], { now: T0, allNamespaces: true, wide: true }))).toEqual([
      'NAMESPACE     NAME        TYPE        CLUSTER-IP     EXTERNAL-IP     PORT(S)         AGE   SELECTOR',
      'default       deathstar   ClusterIP   10.96.43.209   <none>          80/TCP          0s    class=deathstar,org=empire',
      'kube-system   dns         ClusterIP   10.96.0.10     192.168.10.53   53/UDP,53/TCP   0s    <none>',
    ]);
    expect(formatExternalIP(svc('x', { type: 'LoadBalancer' }))).toBe('<pending>');
    expect(formatPorts(svc('x', { ports: [] }))).toBe('<none>');
    expect(formatSelector(undefined)).toBe('<none>');
  });

  it('parses --port specs, names several ports, and finds a deployment selector', () => {
    expect(parsePortSpec('80')).toEqual({ port: 80, protocol: 'TCP' });
    expect(parsePortSpec('80:8080')).toEqual({ port: 80, targetPort: 8080, protocol: 'TCP' });
    expect(parsePortSpec('53/udp')).toEqual({ port: 53, protocol: 'UDP' });
    expect(parsePortSpec('80:http/TCP')).toEqual({ port: 80, targetPort: 'http', protocol: 'TCP' });
    expect(parsePortSpec('5353', 'UDP')).toEqual({ port: 5353, protocol: 'UDP' });
    expect(() => parsePortSpec('http')).toThrow(/"http" is not a port number/);
    expect(() => parsePortSpec('70000')).toThrow(/not a port number/);
    expect(() => parsePortSpec('80:99999')).toThrow(/target port: "99999"/);
    expect(() => parsePortSpec('80/SCTP')).toThrow(/protocol must be TCP or UDP/);
    expect(() => parsePortSpec('80:81:82')).toThrow(/not PORT\[:TARGET\]/);
    expect(namePorts([{ port: 80 }])).toEqual([{ port: 80 }]);
    expect(namePorts([{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }, { port: 80, targetPort: 8080 }]).map((p) => p.name)).toEqual(['53-53', '53-53-tcp', '80-8080']);
    expect(commonLabels([
      pod('deathstar-1', { labels: { org: 'empire', class: 'deathstar', 'pod-template-hash': 'a' } }),
      pod('deathstar-2', { labels: { org: 'empire', class: 'deathstar', 'pod-template-hash': 'a', extra: 'x' } }),
    ])).toEqual({ org: 'empire', class: 'deathstar' });
  });
});

const STATUS: AgentStatus = {
  node: 'k8s-ctr', nodeIP: '192.168.10.100', version: '0.1.0', uptimeSeconds: 60, kvstore: { ok: true, message: 'local /run/ciliary/k8s-ctr/kvstore.json' },
  ipam: { cidr: '172.20.0.0/24', allocated: [{ ip: '172.20.0.106', owner: 'router' }, { ip: '172.20.0.10', owner: 'default/xwing' }, { ip: '172.20.0.11', owner: 'health' }] },
  routerIP: '172.20.0.106', endpoints: { total: 3, ready: 3 }, maps: [],
  features: {
    routing: 'native', monitor: { cpus: 1, ringEvents: 65536 }, hubble: true, backendSelection: { algorithm: 'random' },
    services: { clusterIP: true, nodePort: false, loadBalancer: false, externalIPs: true, hostPort: false },
  },
  datapath: { devices: 3, rxPackets: 10, rxBytes: 1000, txPackets: 9, txBytes: 900, drops: 1, forwards: 8, tunnelGsoTx: 0, tunnelGsoRx: 0 }, controllers: { total: 35, failing: 0 },
};

describe('status formatting (REFERENCE.md)', () => {
  it('prints what the datapath does: no tunnel, masquerading, pacing, NodePort or LoadBalancer while they do not run', () => {
    const out = lines(formatStatus(STATUS, true));
    for (const want of [
      'IPAM:                   IPv4: 3/254 allocated from 172.20.0.0/24',
      'Allocated addresses:',
      '  172.20.0.106 (router)',
      'KubeProxyReplacement Details:',
      '  Backend Selection:      Random',
      '  Session Affinity:       Enabled',
      '  Services:',
      '  - ClusterIP:      Enabled',
      '  - externalIPs:    Enabled',
      'Routing:                Network: Native   Host: BPF',
      'Masquerading:           Disabled',
      'BandwidthManager:       Disabled',
      'Proxy Status:           Disabled',
      '  - NodePort:       Disabled',
      '  - LoadBalancer:   Disabled',
      'NodeMonitor:            Listening for events on 1 CPUs with a ring of 65536 events',
      'KVStore:                Ok   local /run/ciliary/k8s-ctr/kvstore.json',
      'KubeProxyReplacement:   True   [192.168.10.100 (Direct Routing)]',
      'Kubernetes:             Disabled',
      'Controller Status:      35/35 healthy',
      'Cluster health:         Probe disabled',
    ]) expect(out).toContain(want);
    expect(out.join('\n')).not.toMatch(/vxlan|Tunnel|2 CPUs/);
  });
  it('--verbose prints how tunnelled super-packets leave, only in tunnel mode: whole through the GSO device, or cut by the agent', () => {
    const tunnel = (tunnelGso?: string): AgentStatus => ({
      ...STATUS, features: { ...STATUS.features, routing: 'tunnel', tunnelProtocol: 'vxlan', ...(tunnelGso ? { tunnelGso } : {}) },
      datapath: { ...STATUS.datapath, tunnelGsoTx: 12, tunnelGsoRx: 3 },
    });
    expect(lines(formatStatus(tunnel('cilium_vxlan'), true))).toContain('Tunnel GSO:             cilium_vxlan: 12 super-packets sent whole, 3 received whole');
    expect(lines(formatStatus(tunnel(), true))).toContain('Tunnel GSO:             Disabled (super-packets segmented by the agent), 3 received whole');
    expect(lines(formatStatus(STATUS, true)).join('\n')).not.toContain('Tunnel GSO');
  });
  it('prints the reference lines for features that run, a failing store, and hides addresses without --verbose', () => {
    const ref = refBlock('`status --verbose` (excerpt)');
    const running: AgentStatus = {
      ...STATUS, controllers: { total: 4, failing: 1 }, kvstore: { ok: false, message: 'etcd: 0/1 connected: context deadline exceeded' },
      edtQueues: { endpoints: 1, queuedPackets: 3, queuedBytes: 3 * 65664, capacityPackets: 48 },
      features: {
        ...STATUS.features, routing: 'tunnel', tunnelProtocol: 'vxlan', masquerade: { mode: 'BPF', devices: ['eth1'], cidr: '172.20.0.0/16' }, bandwidthManager: 'EDT with BPF [CUBIC]',
        proxy: { redirects: 0, ports: '10000-20000' }, backendSelection: { algorithm: 'maglev', maglevTableSize: 16381 },
        services: { clusterIP: true, nodePort: true, loadBalancer: true, externalIPs: true, hostPort: false },
      },
    };
    const verbose = lines(formatStatus(running, true));
    expect(verbose).toContain('EDT queues:             3/48 packets held (192 KiB) for 1 rate-limited endpoints');
    for (const want of ['Routing:                Network: Tunnel [vxlan]   Host: BPF', 'Proxy Status:           OK, ip 172.20.0.106, 0 redirects active on ports 10000-20000',
      '  - NodePort:       Enabled (Range: 30000-32767)', '  - LoadBalancer:   Enabled']) {
      expect(ref).toContain(want);
      expect(verbose).toContain(want);
    }
    expect(verbose).toContain('Masquerading:           BPF   [eth1]   172.20.0.0/16 [IPv4: Enabled, IPv6: Disabled]');
    expect(ref).toContain('Masquerading:           BPF   [eth1]   172.20.0.0/16 [IPv4: Enabled, IPv6: Disabled]');
    expect(verbose).toContain('  Backend Selection:      Maglev (Table Size: 16381)');
    const out = lines(formatStatus(running));
    expect(out).not.toContain('Allocated addresses:');
    expect(out).toContain('KVStore:                Failure   Err: etcd: 0/1 connected: context deadline exceeded');
    expect(out).toContain('Controller Status:      3/4 healthy');
    expect(cidrCapacity('172.20.0.0/24')).toBe(254);
    expect(cidrCapacity('10.0.0.0/16')).toBe(65534);
  });
});

describe('monitor formatting', () => {
  const ev: MonitorEvent = { type: 'trace', time: 't', summary: '-> endpoint 1174 flow 0x1', verbose: 'CPU 00: MARK 0x0 FROM 1174 to-endpoint', hex: '450000' + '41'.repeat(18) };
  it('summary, verbose and hex forms', () => {
    expect(formatMonitorEvent(ev)).toBe('-> endpoint 1174 flow 0x1\n');
    expect(formatMonitorEvent(ev, 1, true)).toBe('CPU 00: MARK 0x0 FROM 1174 to-endpoint\n');
    expect(formatMonitorEvent({ ...ev, verbose: undefined }, 1)).toBe('-> endpoint 1174 flow 0x1\n');
    const two = formatMonitorEvent(ev, 2, true).split('\n');
    expect(two[0]).toMatch(/^-{78}$/);
    expect(two[2]).toBe('00000000  45 00 00 41 41 41 41 41  41 41 41 41 41 41 41 41  |E..AAAAAAAAAAAAA|');
    expect(two[3]).toBe('00000010  41 41 41 41 41                                    |AAAAA|');
    expect(hexDump('')).toBe('');
  });
});

// A two-document file whose second policy has a bad port on line 20.
const BROKEN_YAML = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ok
spec:
  endpointSelector: {}
---
# the Star Wars rule, with a typo in the port
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
spec:
  endpointSelector:
    matchLabels: {org: empire, class: deathstar}
  ingress:
  - fromEndpoints:
    - matchLabels: {org: empire}
    toPorts:
    - ports:
      - port: "70000"
        protocol: TCP
`;

describe('policy formatting and YAML line mapping', () => {
  it('parses multi-document YAML, lists and kind: List; maps agent errors to the document and line', () => {
    const f = parsePolicyFile(BROKEN_YAML);
    expect(f.objects.map((o: any) => o.metadata.name)).toEqual(['ok', 'rule1']);
    expect(f.sources.map((s) => [s.document, s.line])).toEqual([[1, 1], [2, 9]]);
    expect(locateImportError('policy #2: spec.ingress[0].toPorts[0].ports[0].port: 70000 is out of range 0-65535', f))
      .toEqual({ document: 2, line: 21, reason: 'spec.ingress[0].toPorts[0].ports[0].port: 70000 is out of range 0-65535' });
    // the deepest node the path reaches when it goes further than the file
    expect(locateImportError('policy #2: spec.ingress[0].toPorts[0].ports[0].endPort: missing', f).line).toBe(21);
    expect(locateImportError('policy #1: spec.endpointSelector: bad', f)).toMatchObject({ document: 1, line: 6 });
    expect(locateImportError('something else', f)).toEqual({ reason: 'something else' });
    // One object sent: the agent does not number it.
    const one = parsePolicyFile('---\n# nothing\n---\nkind: CiliumNetworkPolicy\nmetadata:\n  name: x\nspec:\n  ingress: []\n');
    expect(locateImportError('spec.ingress: must not be empty', one)).toEqual({ document: 2, line: 8, reason: 'spec.ingress: must not be empty' });
    // JSON, an array of objects, and a kubectl List
    const json = parsePolicyFile('[\n  {"kind": "CiliumNetworkPolicy",\n   "metadata": {"name": "a"}},\n  {"kind": "NetworkPolicy",\n   "metadata": {"name": "b"}}\n]\n');
    expect(json.objects).toHaveLength(2);
    expect(locateImportError('policy #2: metadata.name: bad', json)).toMatchObject({ document: 1, line: 5 });
    const list = parsePolicyFile('kind: List\nitems:\n- kind: NetworkPolicy\n  metadata: {name: a}\n- kind: NetworkPolicy\n  metadata:\n    name: b\n');
    expect(locateImportError('policy #2: metadata.name: bad', list)).toMatchObject({ document: 1, line: 7 });
    expect(() => parsePolicyFile('kind: x\n---\n- a: [\n')).toThrow(/^document 2, line \d+: /);
    expect(() => parsePolicyFile('just a string\n')).toThrow('document 1, line 1: a policy must be a mapping, not string');
    expect(parsePolicyFile('').objects).toEqual([]);
  });

  it('prints import results, policy get and kind names as cilium and kubectl', () => {
    const r: PolicyImportResult = { revision: 7, policies: [
      { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', result: 'created' },
      { kind: 'CiliumClusterwideNetworkPolicy', name: 'cw', result: 'unchanged' },
      { kind: 'NetworkPolicy', namespace: 'default', name: 'np', result: 'configured' },
    ] };
    expect(formatImportResult(r)).toBe('ciliumnetworkpolicy.cilium.io/rule1 created\nciliumclusterwidenetworkpolicy.cilium.io/cw unchanged\nnetworkpolicy.networking.k8s.io/np configured\nRevision: 7\n');
    expect(resourceName('CiliumNetworkPolicy', true)).toBe('ciliumnetworkpolicies.cilium.io');
    expect(['cnp', 'CCNP', 'networkpolicies', 'pods'].map(policyKindOf)).toEqual(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy', undefined]);
    const ps: PolicySummary[] = [
      { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', object: { metadata: { name: 'rule1' } }, selects: [] },
      { kind: 'CiliumNetworkPolicy', namespace: 'lab', name: 'rule1', object: { metadata: { name: 'rule1', namespace: 'lab' } }, selects: [] },
    ];
    expect(formatPolicyGet({ revision: 3, policies: ps }, { name: 'rule1', namespace: 'lab' })).toBe('[\n  {\n    "metadata": {\n      "name": "rule1",\n      "namespace": "lab"\n    }\n  }\n]\nRevision: 3\n');
    expect(formatPolicyGet({ revision: 3, policies: [] })).toBe('[]\nRevision: 3\n');
  });

  it("policy get -o jsonpath='{.revision}' and -o json as cilium-dbg's (what cilium connectivity test reads)", () => {
    expect(formatPolicyGetOutput({ revision: 7, policies: [] }, "jsonpath={.revision}")).toBe('7');
    expect(JSON.parse(formatPolicyGetOutput({ revision: 7, policies: [] }, 'json'))).toEqual({ policy: '[]', revision: 7 });
    expect(() => formatPolicyGetOutput({ revision: 7, policies: [] }, 'yaml')).toThrow(/--output must be json or jsonpath/);
  });

  it('tables like kubectl get cnp / netpol', () => {
    const now = Date.parse('2025-07-25T18:00:00Z');
    const ps: PolicySummary[] = [
      { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', object: { metadata: { name: 'rule1', creationTimestamp: '2025-07-25T17:55:00Z' } }, selects: [] },
      { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'l7-visibility', object: { metadata: { name: 'l7-visibility' } }, selects: [] },
    ];
    expect(formatPoliciesTable(ps, 'CiliumNetworkPolicy', { now })).toBe('NAME            AGE         VALID\nl7-visibility   <unknown>   True\nrule1           5m          True\n');
    expect(lines(formatPoliciesTable(ps, 'CiliumNetworkPolicy', { now, allNamespaces: true }))[0]).toBe('NAMESPACE   NAME            AGE         VALID');
    const np: PolicySummary = { kind: 'NetworkPolicy', namespace: 'default', name: 'deny', object: { spec: { podSelector: { matchLabels: { role: 'db', app: 'x' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }] } } }, selects: [] };
    expect(formatPoliciesTable([np], 'NetworkPolicy', { now })).toBe('NAME   POD-SELECTOR                  AGE\ndeny   app=x,role=db,tier in (a,b)   <unknown>\n');
    expect(formatPodSelector({ spec: { podSelector: {} } })).toBe('<none>');
  });

  it('bpf policy get --all: endpoint, pinned path, the agent\'s table', () => {
    const ref = refBlock('`bpf policy get`').join('\n') + '\n';
    expect(policyMapPath(312)).toBe('/sys/fs/bpf/tc/globals/cilium_policy_00312');
    expect(formatPolicyGetAll([{ id: 312, table: ref }, { id: 1972, table: ref }])).toBe(
      `Endpoint ID: 312\nPath: /sys/fs/bpf/tc/globals/cilium_policy_00312\n${ref}\nEndpoint ID: 1972\nPath: /sys/fs/bpf/tc/globals/cilium_policy_01972\n${ref}`);
  });

  it('identity list and ip list as cilium-dbg', () => {
    const ids = [
      { id: 18300, labels: ['k8s:org=alliance', 'k8s:class=xwing'] },
      { id: 1, labels: ['reserved:host'] },
      { id: 7, labels: ['reserved:kube-apiserver', 'reserved:remote-node'] },
    ];
    expect(formatIdentityList(ids)).toBe([
      'ID         LABELS',
      '1          reserved:host',
      '7          reserved:kube-apiserver',
      '           reserved:remote-node',
      '18300      k8s:class=xwing',
      '           k8s:org=alliance',
      '',
    ].join('\n'));
    expect(lines(formatIdentityList([{ id: 16777217, labels: ['cidr:10.0.0.0/8', 'reserved:world'] }]))).toEqual(['ID         LABELS', '16777217   cidr:10.0.0.0/8', '           reserved:world']);
    const ep = (id: number, identity: number): Endpoint => ({ id, podName: 'default/x', identity, labels: [], ipv4: '', ifindex: 1, ifname: 'lxc', state: 'ready', policyIngress: 'Disabled', policyEgress: 'Disabled', isHost: false });
    expect(formatIdentityEndpoints(ids, [ep(312, 18300), ep(313, 18300), ep(1, 1)])).toBe([
      'ID      LABELS             REFCOUNT',
      '1       reserved:host      1',
      '18300   k8s:class=xwing    2',
      '        k8s:org=alliance',
      '',
    ].join('\n'));
    const ips = [
      { prefix: '172.20.0.10/32', identity: 18300, labels: ['k8s:class=xwing', 'k8s:org=alliance'], source: 'custom-resource' },
      { prefix: '0.0.0.0/0', identity: 2, labels: ['reserved:world'], source: 'generated' },
    ];
    expect(formatIpList(ips)).toBe([
      'IP                  IDENTITY                                   SOURCE',
      '0.0.0.0/0           reserved:world                             generated',
      '172.20.0.10/32      k8s:class=xwing                            custom-resource',
      '                    k8s:org=alliance',
      '',
    ].join('\n'));
    expect(lines(formatIpList(ips, true))[2]).toBe('172.20.0.10/32      18300                                      custom-resource');
  });
});

describe('arguments and targets', () => {
  it('parses flags anywhere, -- rest, combined short flags', () => {
    expect(parseArgs(['--node', 'k8s-w1', 'run', 'xwing', '-n', 'sw', '--labels=org=alliance', '--', 'sleep', '-n', '1'])).toEqual({
      positionals: ['run', 'xwing'], flags: { node: 'k8s-w1', namespace: 'sw', labels: 'org=alliance' }, rest: ['sleep', '-n', '1'],
    });
    expect(parseArgs(['monitor', '-vv', '--hex', '--type', 'drop', '-t', 'trace']).flags).toEqual({ verbose: 2, hex: true, type: ['drop', 'trace'] });
    expect(parseArgs(['get', 'pods', '-A', '-owide']).flags).toEqual({ 'all-namespaces': true, output: 'wide' });
    expect(() => parseArgs(['--nope'])).toThrow(/unknown flag --nope/);
    expect(() => parseArgs(['-x'])).toThrow(/unknown flag -x/);
    expect(() => parseArgs(['-n'])).toThrow(/needs a value/);
  });
  it('resolves the agent socket: --socket, --node, CILIARY_NODE, the only agent, the hostname', () => {
    const run = mkdtempSync(join(tmpdir(), 'ciliary-run-'));
    try {
      expect(resolveTarget({ socket: '/x/y/agent.sock', env: {} })).toMatchObject({ socketPath: '/x/y/agent.sock', stateDir: '/x/y' });
      expect(resolveTarget({ node: 'k8s-w1', env: { CILIARY_NODE: 'no' }, runDir: run })).toEqual({ node: 'k8s-w1', socketPath: join(run, 'k8s-w1/agent.sock'), stateDir: join(run, 'k8s-w1') });
      expect(resolveTarget({ env: { CILIARY_NODE: 'k8s-w2' }, runDir: run }).node).toBe('k8s-w2');
      expect(resolveTarget({ env: {}, runDir: run, hostname: 'myhost' }).node).toBe('myhost');
      mkdirSync(join(run, 'k8s-ctr'));
      mkdirSync(join(run, 'stale'));
      writeFileSync(join(run, 'k8s-ctr', 'agent.sock'), '');
      expect(resolveTarget({ env: {}, runDir: run, hostname: 'myhost' }).node).toBe('k8s-ctr');
      mkdirSync(join(run, 'k8s-w1'));
      writeFileSync(join(run, 'k8s-w1', 'agent.sock'), '');
      expect(resolveTarget({ env: {}, runDir: run, hostname: 'myhost' }).node).toBe('myhost'); // two agents: ambiguous
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  });
});

describe('ciliary against the agent core', () => {
  let dir: string;
  let sock: string;
  let agent: Agent;
  let api: ApiServer;
  let tap: MonitorTap;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-cli-'));
    sock = join(dir, 'agent.sock');
    agent = await startAgentCore('k8s-ctr');
    tap = tapMonitor(agent);
    api = await startApi(agent, { socketPath: sock, logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    await api?.close();
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main(['--socket', sock, ...argv], { out: (s) => (out += s), err: (s) => (err += s) }, {});
    return { code, out, err };
  }
  /** Runs a verb that must succeed. */
  async function ok(...argv: string[]): Promise<string> {
    const r = await cli(...argv);
    expect(r, argv.join(' ')).toMatchObject({ code: 0, err: '' });
    return r.out;
  }

  it('config --all (seed 002: c0 config --all |grep L2) lists the same options as config', async () => {
    const all = await ok('config', '--all');
    expect(all).toBe(await ok('config'));
    expect(all).toMatch(/^enable-l2-announcements +: false$/m);
  });

  it('runs, lists and deletes pods', async () => {
    expect(await cli('run', 'netpod', '-n', 'lab', '--labels', 'app=netpod', '--', 'sleep', 'infinity')).toEqual({ code: 0, out: 'pod/netpod created\n', err: '' });
    expect(agent.getPod('lab', 'netpod')).toMatchObject({ labels: { app: 'netpod' }, command: ['sleep', 'infinity'] });
    expect((await cli('run', 'netpod', '-n', 'lab')).err).toBe('Error: pods "netpod" already exists\n');
    expect((await cli('run', 'Bad')).err).toContain('body/name must match pattern');
    await ok('run', 'tiefighter', '-n', 'lab');
    const list = await cli('get', 'pods', '-n', 'lab');
    expect(lines(list.out).map((l) => l.split(/\s+/).slice(0, 3).join(' '))).toEqual(['NAME READY STATUS', 'netpod 1/1 Running', 'tiefighter 1/1 Running']);
    const all = await cli('get', 'pods', '-A', '-o', 'wide');
    expect(lines(all.out)[0]).toMatch(/^NAMESPACE +NAME +READY +STATUS +RESTARTS +AGE +IP +NODE/);
    expect(all.out).toMatch(new RegExp(`lab +netpod +1/1 +Running +0 +\\S+ +${agent.getPod('lab', 'netpod')!.podIP.replace(/\./g, '\\.')} +k8s-ctr`));
    expect(await cli('get', 'pods', '-n', 'empty')).toEqual({ code: 0, out: '', err: 'No resources found in empty namespace.\n' });
    expect(await cli('delete', 'pod', 'netpod', 'tiefighter', '-n', 'lab')).toEqual({ code: 0, out: 'pod "netpod" deleted\npod "tiefighter" deleted\n', err: '' });
    expect(await cli('delete', 'pod', 'netpod', '-n', 'lab')).toEqual({ code: 1, out: '', err: 'Error from server (NotFound): pods "netpod" not found\n' });
    expect(agent.listPods().filter((p) => p.namespace === 'lab')).toEqual([]);
  });

  it('prints endpoints, bpf lists, maps and status through the API', async () => {
    await ok('run', 'xwing-ep', '--labels', 'org=alliance,class=xwing');
    const pod = agent.getPod('default', 'xwing-ep')!;
    const ep = agent.listEndpoints().find((e) => e.podName === 'default/xwing-ep')!;
    const eps = lines(await ok('endpoint', 'list'));
    expect(eps.find((l) => l.startsWith(`${ep.id} `))).toMatch(new RegExp(`^${ep.id} +Disabled +Disabled +${ep.identity} +k8s:class=xwing +${pod.podIP.replace(/\./g, '\\.')} +ready$`));
    expect(JSON.parse(await ok('endpoint', 'get', String(ep.id))).identity).toBe(ep.identity);
    const unused = [...Array(4096).keys()].find((i) => i > 0 && !agent.listEndpoints().some((e) => e.id === i))!;
    expect((await cli('endpoint', 'get', String(unused))).err).toBe(`Error: endpoint ${unused} not found\n`);
    expect(lines(await ok('bpf', 'ipcache', 'list'))).toContain(`${`${pod.podIP}/32`.padEnd(20)}identity=${ep.identity} encryptkey=0 tunnelendpoint=0.0.0.0`);
    expect(lines(await ok('bpf', 'endpoint', 'list'))).toContainEqual(expect.stringMatching(new RegExp(`^${pod.podIP.replace(/\./g, '\\.')}:0 +id=${ep.id} +sec_id=${ep.identity} +flags=0x0000 `)));
    expect(await ok('map', 'list')).toMatch(/\ncilium_lxc +3 +0 +true +65535 +0\.00%\n/);
    const st = await ok('status', '--verbose');
    expect(st).toContain(`IPAM:                   IPv4: ${agent.status().ipam.allocated.length}/254 allocated from 172.20.0.0/24`);
    expect(st).toContain('  172.20.0.1 (router)');
    expect(st).toContain(`  ${pod.podIP} (default/xwing-ep)`);
    expect(st).toContain('Routing:                Network: Native   Host: BPF');
    expect(st).toContain('KVStore:                Ok   local (memory)');
    await ok('delete', 'pod', 'xwing-ep');
  });

  it('creates, exposes, lists and deletes services', async () => {
    await ok('run', 'xwing', '--labels', 'org=alliance,class=x-wing');
    const ds = [1, 2].map(() => `deathstar-8c4c77fb7-${Math.random().toString(36).slice(2, 7)}`);
    for (const name of ds) {
      const r = await agent.resources.apply([{ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { org: 'empire', class: 'deathstar', 'pod-template-hash': '8c4c77fb7' } }, spec: { containers: [{ name: 'ds', image: 'ciliary/run', ports: [{ name: 'http', containerPort: 80 }] }] } }]);
      expect(r[0].result).toBe('created');
    }
    expect(await cli('create', 'service', 'deathstar', '--selector', 'org=empire,class=deathstar', '--port', '80:http', '--session-affinity-timeout', '60'))
      .toEqual({ code: 0, out: 'service/deathstar created\n', err: '' });
    expect(agent.getService('default', 'deathstar')).toMatchObject({ selector: { org: 'empire', class: 'deathstar' }, ports: [{ port: 80, targetPort: 'http', protocol: 'TCP' }], sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 60 });
    expect(agent.getService('default', 'deathstar')!.frontends[0].backends.map((b) => b.pod).sort()).toEqual(ds.map((n) => `default/${n}`).sort());
    expect(await ok('create', 'service', 'deathstar', '--selector', 'org=empire,class=deathstar', '--port', '80:http', '--session-affinity-timeout', '60')).toBe('service/deathstar unchanged\n');
    expect(await ok('create', 'svc', 'clusterip', 'np', '-n', 'lab', '--port', '80:8080', '--port', '53/UDP', '--cluster-ip', '10.96.0.99')).toBe('service/np created\n');
    expect(agent.getService('lab', 'np')).toMatchObject({ clusterIP: '10.96.0.99', ports: [{ name: '80-8080', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: '53-53', port: 53, protocol: 'UDP' }] });
    expect(await ok('create', 'service', 'np', '-n', 'lab', '--port', '81')).toBe('service/np configured\n');
    // NodePort: a port from 30000-32767, the ClusterIP kept; LoadBalancer keeps that nodePort.
    expect(await ok('create', 'svc', 'nodeport', 'np', '-n', 'lab', '--port', '80')).toBe('service/np configured\n');
    const np = agent.getService('lab', 'np')!;
    expect(np).toMatchObject({ type: 'NodePort', clusterIP: '10.96.0.99' });
    expect(np.ports[0].nodePort).toBeGreaterThanOrEqual(30000);
    expect(np.ports[0].nodePort).toBeLessThanOrEqual(32767);
    expect(await ok('create', 'service', 'np', '-n', 'lab', '--port', '80', '--type', 'LoadBalancer')).toBe('service/np configured\n');
    expect(agent.getService('lab', 'np')).toMatchObject({ type: 'LoadBalancer', clusterIP: '10.96.0.99', ports: [{ port: 80, nodePort: np.ports[0].nodePort }] });
    expect(await cli('create', 'service', 'x', '--port', '80', '--type', 'ExternalName')).toMatchObject({ code: 2, err: expect.stringContaining('--type must be ClusterIP, NodePort, LoadBalancer') });
    expect(await cli('create', 'service', 'x')).toMatchObject({ code: 2, err: expect.stringContaining('at least one --port') });
    expect(await cli('create', 'service', 'x', '--port', '80:Bad_Name')).toMatchObject({ code: 1, err: expect.stringContaining('body/ports/0/targetPort must match pattern') });
    expect(await cli('create', 'pod', 'x')).toMatchObject({ code: 2, err: expect.stringContaining('create supports services') });

    // expose: the selector is the pod's labels; ports from --port, else the pod's container ports.
    expect(await cli('expose', 'pod', 'xwing', '--port', '80', '--target-port', '8080')).toEqual({ code: 0, out: 'service/xwing exposed\n', err: '' });
    expect(agent.getService('default', 'xwing')).toMatchObject({ selector: { org: 'alliance', class: 'x-wing' }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] });
    expect(await ok('expose', 'deployment', 'deathstar', '--name', 'ds', '--protocol', 'UDP')).toBe('service/ds exposed\n');
    expect(agent.getService('default', 'ds')).toMatchObject({ selector: { org: 'empire', class: 'deathstar' }, ports: [{ port: 80, targetPort: 80, protocol: 'UDP' }] });
    await ok('run', 'nolabels');
    expect(await cli('expose', 'pod', 'nolabels', '--port', '80')).toMatchObject({ code: 1, err: expect.stringContaining("couldn't retrieve selectors") });
    expect(await cli('expose', 'pod', 'xwing')).toMatchObject({ code: 2, err: expect.stringContaining("couldn't find port") });
    expect(await cli('expose', 'pod', 'ghost', '--port', '80')).toMatchObject({ code: 1, err: 'Error: pod "default/ghost" not found\n' });
    expect(await cli('expose', 'deployment', 'ghost', '--port', '80')).toMatchObject({ code: 1, err: expect.stringContaining('deployments "ghost" not found') });

    const ip = (ns: string, name: string) => agent.getService(ns, name)!.clusterIP;
    const table = lines(await ok('get', 'svc'));
    expect(table[0]).toMatch(/^NAME +TYPE +CLUSTER-IP +EXTERNAL-IP +PORT\(S\) +AGE$/);
    expect(table.slice(1).map((l) => l.split(/\s+/).slice(0, 5).join(' '))).toEqual([
      `deathstar ClusterIP ${ip('default', 'deathstar')} <none> 80/TCP`, `ds ClusterIP ${ip('default', 'ds')} <none> 80/UDP`, `xwing ClusterIP ${ip('default', 'xwing')} <none> 80/TCP`,
    ]);
    expect(lines(await ok('get', 'services', 'xwing', '-o', 'wide'))[1]).toMatch(/^xwing .* 80\/TCP +\d+s +class=x-wing,org=alliance$/);
    expect(lines(await ok('get', 'svc', '-A')).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(['NAMESPACE NAME', 'default deathstar', 'default ds', 'default xwing', 'lab np']);
    expect(JSON.parse(await ok('get', 'service', '-n', 'lab', '-o', 'json')).map((x: Service) => x.name)).toEqual(['np']);
    expect(await cli('get', 'svc', 'nope')).toMatchObject({ code: 1, err: 'Error: services "nope" not found\n' });
    expect(await cli('get', 'svc', '-n', 'empty')).toEqual({ code: 0, out: '', err: 'No resources found in empty namespace.\n' });

    const svcList = lines(await ok('service', 'list'));
    expect(svcList[0]).toMatch(/^ID +Frontend +Service Type +Backend$/);
    const xw = agent.getService('default', 'xwing')!.frontends[0];
    expect(svcList).toContainEqual(expect.stringMatching(new RegExp(`^${xw.id} +${xw.address.replace(/\./g, '\\.')}:80 +ClusterIP +1 => ${agent.getPod('default', 'xwing')!.podIP.replace(/\./g, '\\.')}:8080$`)));
    expect(JSON.parse(await ok('service', 'list', '-o', 'json'))).toHaveLength(4);
    expect(lines(await ok('bpf', 'lb', 'list'))).toContainEqual(expect.stringMatching(new RegExp(`^${xw.address.replace(/\./g, '\\.')}:80 +0\\.0\\.0\\.0:0 \\(${xw.id}\\) \\[ClusterIP, non-routable\\]$`)));
    expect(lines(await ok('bpf', 'lb', 'list', '--revnat'))).toContainEqual(expect.stringMatching(new RegExp(`^${xw.id} +${xw.address.replace(/\./g, '\\.')}:80$`)));

    expect(await cli('delete', 'svc', 'ds', 'xwing')).toEqual({ code: 0, out: 'service "ds" deleted\nservice "xwing" deleted\n', err: '' });
    expect(await cli('delete', 'service/np', '-n', 'lab')).toEqual({ code: 0, out: 'service "np" deleted\n', err: '' });
    expect(await cli('delete', 'svc', 'np', '-n', 'lab')).toEqual({ code: 1, out: '', err: 'Error from server (NotFound): services "np" not found\n' });
    expect(agent.listServices().map((x) => `${x.namespace}/${x.name}`)).toEqual(['default/deathstar']);
    await ok('delete', 'svc', 'deathstar');
    for (const name of [...ds, 'xwing', 'nolabels']) await ok('delete', 'pod', name);
  });

  it('prints the CT table and flushes it', async () => {
    expect(Array.isArray(JSON.parse(await ok('bpf', 'lb', 'list', '-o', 'json')))).toBe(true);
    expect(await cli('bpf', 'lb', 'list', '--from-file')).toMatchObject({ code: 1, err: expect.stringContaining('map "cilium_lb4_services_v2" not found') });
    expect(await cli('bpf', 'ct', 'list', 'global')).toEqual({ code: 0, out: '', err: '' });
    expect(await cli('bpf', 'ct', 'list', '312')).toMatchObject({ code: 2, err: expect.stringContaining('global table only') });
    expect(await cli('bpf', 'ct', 'flush', 'global')).toEqual({ code: 0, out: 'Flushed 0 entries from cilium_ct4_global and cilium_ct_any4_global\n', err: '' });
    expect((await cli('help')).out).toMatch(/service list[\s\S]*bpf lb list[\s\S]*bpf ct flush global/);
  });

  it('policy import reports a rejected field at its YAML line', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, BROKEN_YAML);
    expect(await cli('policy', 'import', file)).toEqual({
      code: 1, out: '', err: `error: ${file}: document 2, line 21: spec.ingress[0].toPorts[0].ports[0].port: 70000 is out of range 0-65535\n`,
    });
    // The brief's case: the first policy of a file
    const first = join(dir, 'first.yaml');
    writeFileSync(first, BROKEN_YAML.split('---\n')[1]);
    expect((await cli('policy', 'import', first)).err).toBe(`error: ${first}: document 1, line 14: spec.ingress[0].toPorts[0].ports[0].port: 70000 is out of range 0-65535\n`);
    expect(agent.listPolicies().policies).toEqual([]); // the valid first document was not imported either
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'kind: CiliumNetworkPolicy\nmetadata: {name: [\n');
    expect(await cli('policy', 'import', bad)).toMatchObject({ code: 1, err: expect.stringMatching(new RegExp(`^error: ${bad}: document 1, line \\d+: `)) });
    expect(await cli('policy', 'import', join(dir, 'missing.yaml'))).toMatchObject({ code: 1, err: expect.stringContaining('ENOENT') });
    expect((await cli('policy', 'import')).code).toBe(2);
  });

  it('imports, gets, lists and deletes policies', async () => {
    const file = join(dir, 'rules.yaml');
    const cnp = (name: string, port: string) => `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: ${name}\nspec:\n  endpointSelector: {matchLabels: {org: empire}}\n  ingress:\n  - toPorts:\n    - ports:\n      - {port: "${port}", protocol: TCP}\n`;
    writeFileSync(file, `${cnp('rule1', '80')}---\n${cnp('rule2', '443')}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: lab}\nspec: {podSelector: {}}\n`);
    const imported = await cli('policy', 'import', file);
    const rev = agent.listPolicies().revision;
    expect(imported).toEqual({
      code: 0, err: '',
      out: `ciliumnetworkpolicy.cilium.io/rule1 created\nciliumnetworkpolicy.cilium.io/rule2 created\nnetworkpolicy.networking.k8s.io/deny-all created\nRevision: ${rev}\n`,
    });
    expect(await ok('policy', 'import', file)).toContain('rule1 unchanged\n');
    const got = await ok('policy', 'get', 'rule1');
    expect(lines(got).at(-1)).toBe(`Revision: ${rev}`);
    expect(JSON.parse(got.slice(0, got.lastIndexOf('Revision:')))).toEqual([expect.objectContaining({ metadata: { name: 'rule1', namespace: 'default' } })]);
    expect(JSON.parse((await ok('policy', 'get')).split('Revision:')[0])).toHaveLength(3);
    expect(await cli('policy', 'get', 'nope')).toMatchObject({ code: 1, err: 'Error: policy "nope" not found\n' });

    expect(lines(await ok('get', 'cnp')).map((l) => l.split(/\s+/).join(' '))).toEqual(['NAME AGE VALID', 'rule1 <unknown> True', 'rule2 <unknown> True']);
    expect(await cli('get', 'netpol')).toEqual({ code: 0, out: '', err: 'No resources found in default namespace.\n' });
    expect(lines(await ok('get', 'networkpolicies', '-A'))).toEqual(['NAMESPACE   NAME       POD-SELECTOR   AGE', 'lab         deny-all   <none>         <unknown>']);
    expect(await ok('get', 'ciliumnetworkpolicies', 'rule2', '-o', 'yaml')).toBe([
      'apiVersion: cilium.io/v2', 'kind: CiliumNetworkPolicy', 'metadata:', '  name: rule2', '  namespace: default', 'spec:', '  endpointSelector:', '    matchLabels:', '      org: empire',
      '  ingress:', '  - toPorts:', '    - ports:', '      - port: "443"', '        protocol: TCP', '',
    ].join('\n'));
    const json = JSON.parse(await ok('get', 'cnp', '-o', 'json'));
    expect(json).toMatchObject({ kind: 'List', apiVersion: 'v1' });
    expect(json.items.map((o: any) => o.metadata.name)).toEqual(['rule1', 'rule2']);
    expect(await cli('get', 'cnp/ghost')).toMatchObject({ code: 1, err: 'Error: ciliumnetworkpolicies.cilium.io "ghost" not found\n' });
    expect(await cli('get', 'ccnp')).toEqual({ code: 0, out: '', err: 'No resources found\n' });

    expect(await cli('policy', 'delete', 'rule2')).toEqual({ code: 0, out: `Revision: ${rev + 1}\n`, err: '' });
    expect(await cli('policy', 'delete', 'rule2')).toEqual({ code: 1, out: '', err: 'Error: CiliumNetworkPolicy "default/rule2" not found\n' });
    expect(await cli('policy', 'delete', 'deny-all', '--kind', 'netpol')).toMatchObject({ code: 1 });
    expect(await cli('policy', 'delete', 'deny-all', '--kind', 'netpol', '-n', 'lab')).toEqual({ code: 0, out: `Revision: ${rev + 2}\n`, err: '' });
    expect(await cli('policy', 'delete', 'x', '--kind', 'bogus')).toMatchObject({ code: 2, err: expect.stringContaining('--kind must be') });
    expect(await cli('delete', 'cnp', 'rule1')).toEqual({ code: 0, out: 'ciliumnetworkpolicy.cilium.io "rule1" deleted\n', err: '' });
    await ok('policy', 'import', file);
    expect(await cli('policy', 'delete', '--all')).toEqual({ code: 0, out: `Revision: ${agent.listPolicies().revision}\n`, err: '' });
    expect(agent.listPolicies().policies).toEqual([]);
    expect((await cli('policy', 'delete')).code).toBe(2);
  });

  it('prints bpf policy tables, identities and the ip list', async () => {
    await ok('run', 'xwing-id', '--labels', 'org=alliance,class=ywing');
    const ep = agent.listEndpoints().find((e) => e.podName === 'default/xwing-id')!;
    const table = lines(await ok('bpf', 'policy', 'get', String(ep.id)));
    expect(table[0]).toMatch(/^POLICY {3}DIRECTION {3}LABELS \(source:key\[=value\]\) {3}PORT\/PROTO {3}PROXY PORT {3}AUTH TYPE {3}BYTES +PACKETS {3}PREFIX$/);
    expect(table.slice(1)).toEqual([expect.stringMatching(/^Allow +Ingress +ANY +ANY +NONE +disabled +0 +0 +0$/), expect.stringMatching(/^Allow +Egress +ANY +ANY +NONE +disabled +0 +0 +0$/)]);
    const unused = [...Array(4096).keys()].find((i) => i > 0 && !agent.listEndpoints().some((e) => e.id === i))!;
    expect(await cli('bpf', 'policy', 'get', String(unused))).toEqual({ code: 1, out: '', err: `Error: endpoint ${unused} not found\n` });
    expect((await cli('bpf', 'policy', 'get')).code).toBe(2);
    expect(lines(await ok('bpf', 'policy', 'get', '--all'))).toContain(`Endpoint ID: ${ep.id}`);
    const ids = await ok('identity', 'list');
    expect(ids).toMatch(/^ID {9}LABELS\n1 {10}reserved:host\n2 {10}reserved:world\n/);
    expect(ids).toContain(`\n${String(ep.identity).padEnd(11)}k8s:class=ywing\n`);
    expect(lines(await ok('identity', 'list', '--endpoints'))).toContainEqual(expect.stringMatching(new RegExp(`^${ep.identity} +k8s:class=ywing +1$`)));
    const ipl = lines(await ok('ip', 'list'));
    expect(ipl[0]).toMatch(/^IP {18}IDENTITY +SOURCE$/);
    expect(ipl[1]).toMatch(/^0\.0\.0\.0\/0 {11}reserved:world +default$/);
    const ipRe = agent.getPod('default', 'xwing-id')!.podIP.replace(/\./g, '\\.');
    expect(ipl).toContainEqual(expect.stringMatching(new RegExp(`^${ipRe}/32 +k8s:class=ywing +custom-resource$`)));
    expect(lines(await ok('ip', 'list', '-n'))).toContainEqual(expect.stringMatching(new RegExp(`^${ipRe}/32 +${ep.identity} +custom-resource$`)));
    expect((await cli('help')).out).toMatch(/policy import FILE[\s\S]*get cnp\|ccnp\|netpol[\s\S]*bpf policy get[\s\S]*identity list[\s\S]*ip list/);
    await ok('delete', 'pod', 'xwing-id');
  });

  it('streams monitor events with the cilium monitor header', async () => {
    let out = '';
    const done = main(['monitor', '--type', 'drop', '--socket', sock], { out: (s) => (out += s), err: () => {} }, {});
    while (tap.readers.size === 0) await new Promise((r) => setTimeout(r, 5));
    tap.emit({ type: 'trace', summary: 'not shown' });
    tap.emit({ type: 'drop', summary: 'xx drop (Policy denied) flow 0x0 to endpoint 312' });
    while (!out.includes('Policy denied')) await new Promise((r) => setTimeout(r, 5));
    await api.close(); // the agent goes away: monitor ends with an error
    expect(await done).toBe(1);
    expect(out).toMatch(/^Listening for events on \d+ CPUs with .*\nPress Ctrl-C to quit\nxx drop \(Policy denied\) flow 0x0 to endpoint 312\n$/);
    api = await startApi(agent, { socketPath: sock, logger: pino({ level: 'silent' }) });
  });

  it('usage errors exit 2, an absent agent exits 1 with a clear message', async () => {
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('get', 'pods', '--hex')).err).toContain('flag --hex is not accepted by "ciliary get"');
    expect((await cli('monitor', '--type', 'bogus')).code).toBe(2);
    expect((await cli('get', 'replicasets')).code).toBe(2);
    expect((await cli('exec', 'xwing')).err).toContain('needs a command after --');
    expect((await cli('help')).out).toContain('bpf ipcache list');
    const gone = await main(['status', '--socket', join(dir, 'none.sock')], { out: () => {}, err: (s) => expect(s).toMatch(/cannot reach the ciliary agent at .*none\.sock \(ENOENT\)/) }, {});
    expect(gone).toBe(1);
  });

  it('bin/ciliary get pods -o json works as a child process, through a symlink, from another cwd', async () => {
    await ok('run', 'bin-b', '-n', 'bin');
    await ok('run', 'bin-a', '-n', 'bin');
    const link = join(dir, 'ciliary');
    symlinkSync(join(repo, 'bin', 'ciliary'), link);
    const { stdout, code } = await new Promise<{ stdout: string; code: number }>((resolve) => {
      execFile(link, ['get', 'pods', '-n', 'bin', '-o', 'json', '--socket', sock], { cwd: tmpdir(), env: { ...process.env, CILIARY_NODE: '' } }, (err, stdout) => {
        resolve({ stdout, code: err ? (err as { code?: number }).code ?? 1 : 0 });
      });
    });
    expect(code).toBe(0);
    expect(JSON.parse(stdout).items.map((p: { metadata: { namespace: string; name: string } }) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(['bin/bin-a', 'bin/bin-b']);
    const bad = await new Promise<number>((resolve) => execFile(link, ['nope'], (err) => resolve((err as { code?: number } | null)?.code ?? 0)));
    expect(bad).toBe(2);
    await ok('delete', 'pod', 'bin-a', 'bin-b', '-n', 'bin');
  });
});

describe('bpf lists from the pinned map files', () => {
  it('reads cilium_lxc and cilium_ipcache without an agent (--from-file, and as a fallback)', async () => {
    const [{ native }, { MapRegistry }, catalog, lxcDef, ipcacheDef] = await Promise.all([
      import('../../src/native/index.ts'), import('../../src/maps/index.ts'), import('../../src/maps/cilium/index.ts'),
      import('../../src/maps/cilium/lxc.ts'), import('../../src/maps/cilium/ipcache.ts'),
    ]);
    const defs = { ...catalog, ...lxcDef, ...ipcacheDef };
    const state = mkdtempSync(join(tmpdir(), 'ciliary-pinned-'));
    try {
      const reg = new MapRegistry(state, native.mapFile);
      const specs = defs.mapSpecs();
      const lxc = reg.open(specs.find((s) => s.name === defs.ENDPOINTS_MAP)!);
      const ipc = reg.open(specs.find((s) => s.name === defs.IPCACHE_MAP)!);
      const key = new Uint8Array([10, 242, 0, 178]);
      const val = new Uint8Array(defs.LXC_VALUE);
      const v = new DataView(val.buffer);
      v.setUint32(defs.LXC_IFINDEX, 12, true);
      v.setUint16(defs.LXC_ID, 1583, true);
      v.setUint32(defs.LXC_SEC_ID, 18300, true);
      val.set([0xf2, 0x78, 0x5c, 0x6d, 0xde, 0x3f], defs.LXC_MAC);
      val.set([0x36, 0xc7, 0x3c, 0x43, 0x0a, 0x17], defs.LXC_NODE_MAC);
      expect(lxc.update(key, 0, val)).toBeGreaterThanOrEqual(0);
      const ipKey = (a: number[], len: number) => { const k = new Uint8Array(8); new DataView(k.buffer).setUint32(0, len, true); k.set(a, 4); return k; };
      const ipVal = (id: number, tun: number[]) => { const x = new Uint8Array(defs.IPCACHE_VALUE); new DataView(x.buffer).setUint32(defs.IPC_SEC_ID, id, true); x.set(tun, defs.IPC_TUNNEL); return x; };
      expect(ipc.update(ipKey([10, 1, 5, 0], 24), 0, ipVal(2, [10, 169, 72, 36]))).toBeGreaterThanOrEqual(0);
      expect(ipc.update(ipKey([0, 0, 0, 0], 0), 0, ipVal(2, [0, 0, 0, 0]))).toBeGreaterThanOrEqual(0);
      reg.flushAll();

      const run = async (...argv: string[]) => {
        let out = '';
        let err = '';
        const code = await main(['--socket', join(state, 'agent.sock'), ...argv], { out: (s) => (out += s), err: (s) => (err += s) }, {});
        return { code, out, err };
      };
      const ipcache = await run('bpf', 'ipcache', 'list', '--from-file');
      expect(ipcache).toMatchObject({ code: 0, err: '' });
      expect(lines(ipcache.out)).toEqual([
        'IP PREFIX/ADDRESS   IDENTITY',
        '0.0.0.0/0           identity=2 encryptkey=0 tunnelendpoint=0.0.0.0',
        '10.1.5.0/24         identity=2 encryptkey=0 tunnelendpoint=10.169.72.36',
      ]);
      // No agent on the socket: falls back to the files and says so on stderr.
      const eps = await run('bpf', 'endpoint', 'list');
      expect(eps.code).toBe(0);
      expect(eps.err).toContain('agent not reachable');
      expect(lines(eps.out)[0]).toBe('IP ADDRESS       LOCAL ENDPOINT INFO');
      expect(lines(eps.out)[1]).toMatch(/^10\.242\.0\.178:0 {3}id=1583 .*ifindex=12 .*mac=F2:78:5C:6D:DE:3F nodemac=36:C7:3C:43:0A:17$/);
      const maps = await run('map', 'list', '--from-file');
      expect(lines(maps.out).slice(1).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(['cilium_ipcache 2', 'cilium_lxc 1']);
      expect((await run('bpf', 'ipcache', 'list', '--from-file', '--state-dir', join(state, 'nope'))).err).toContain('map "cilium_ipcache" not found');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
