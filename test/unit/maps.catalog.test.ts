// The map catalog: every Cilium map created through the real map classes over pinned files, filled
// with the catalog's encoders, decoded back, and printed by the CLI from the files (--from-file).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../../src/native/index.ts';
import { MapRegistry, type AnyMap, type MapSpec } from '../../src/maps/index.ts';
import { CATALOG, callsSpec, dumpEntries, formatterFor, mapDefOf, mapSpecs, type MapDef } from '../../src/maps/cilium/index.ts';
import { CT_ANY_MAP, CT_F_SEEN_NON_SYN, CT_TCP_MAP, ctSpecs, TUPLE_F_IN, TUPLE_F_OUT, TUPLE_F_SERVICE, type CtKey, type CtValue } from '../../src/maps/cilium/ct.ts';
import { lbSpecs, LB_AFFINITY_MAP, LB_BACKENDS_MAP, LB_MAGLEV_MAP, LB_REVNAT_MAP, LB_SERVICES_MAP, SVC_FLAG_AFFINITY } from '../../src/maps/cilium/lb.ts';
import { ENDPOINTS_MAP, ENDPOINT_F_HOST } from '../../src/maps/cilium/lxc.ts';
import { IPCACHE_MAP } from '../../src/maps/cilium/ipcache.ts';
import { METRICS_MAP } from '../../src/maps/cilium/metrics.ts';
import { policyMapName, policySpec } from '../../src/maps/cilium/policy.ts';
import { PROXY_MAP, PROXY_UPSTREAM_MAP, proxySpecs } from '../../src/maps/cilium/proxy.ts';
import { TUNNEL_MAP, tunnelSpec } from '../../src/maps/cilium/tunnel.ts';
import { THROTTLE_MAP } from '../../src/maps/cilium/throttle.ts';
import { IPMASQ_MAP, ipMasqSpec, NAT_MAP, natSpec } from '../../src/maps/cilium/nat.ts';
import { main } from '../../src/cli/main.ts';
import { Datapath, DEFAULT_DATAPATH_OPTIONS } from '../../src/dataplane/datapath.ts';
import { ENDPOINT_CALLS } from '../../src/dataplane/programs/index.ts';

const EP = 312;
const CIDR_ID = (1 << 24) + 1;
const ctValue = (v: Partial<CtValue>): CtValue => ({
  lifetime: 0, flags: 0, revNat: 0, backendId: 0, sourceSecurityId: 0, txFlagsSeen: 0, rxFlagsSeen: 0, ifindex: 0,
  lastTxReport: 0, lastRxReport: 0, txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, ...v,
});
const ctKey = (k: Omit<CtKey, 'proto'> & { proto?: number }): CtKey => ({ proto: 6, ...k });
const policyKey = (identity: number, port: number, protocol: number, egress = false) => ({ identity, egress, protocol, port, portPrefixLen: port ? 16 : 0 });
const policyValue = (bytes: number, packets: number) => ({ deny: false, proxyPort: 0, authType: 0, packets, bytes });

/** Entries per map, as typed objects; every map the catalog knows has some. */
const SAMPLES: Record<string, Array<{ key: object; value: object }>> = {
  [TUNNEL_MAP]: [
    { key: { ip: '172.16.1.0', clusterId: 0 }, value: { ip: '192.168.200.101', key: 0 } },
    { key: { ip: '172.16.2.0', clusterId: 0 }, value: { ip: '192.168.200.102', key: 0 } },
  ],
  [ENDPOINTS_MAP]: [
    { key: { ip: '10.242.0.178' }, value: { ifindex: 12, endpointId: 1583, flags: 0, mac: 'F2:78:5C:6D:DE:3F', nodeMac: '36:C7:3C:43:0A:17', securityIdentity: 18300 } },
    { key: { ip: '10.242.0.1' }, value: { ifindex: 3, endpointId: 7, flags: ENDPOINT_F_HOST, mac: '00:00:00:00:00:00', nodeMac: '00:00:00:00:00:00', securityIdentity: 1 } },
  ],
  [IPCACHE_MAP]: [
    { key: { ip: '10.1.5.0', prefixLen: 24 }, value: { identity: 2, tunnelEndpoint: '10.169.72.36', encryptKey: 0, flags: 0 } },
    { key: { ip: '10.0.0.130', prefixLen: 32 }, value: { identity: 3, tunnelEndpoint: '0.0.0.0', encryptKey: 0, flags: 0 } },
    { key: { ip: '10.0.0.0', prefixLen: 8 }, value: { identity: CIDR_ID, tunnelEndpoint: '0.0.0.0', encryptKey: 0, flags: 0 } },
  ],
  [METRICS_MAP]: [
    { key: { reason: 0, direction: 2 }, value: { packets: 12, bytes: 1480 } },
    { key: { reason: 133, direction: 1 }, value: { packets: 3, bytes: 180 } },
  ],
  [callsSpec(EP).name]: [{ key: { slot: 7 }, value: { program: 1 } }],
  [CT_TCP_MAP]: [
    {
      key: ctKey({ daddr: '10.96.43.209', saddr: '10.0.1.90', dport: 80, sport: 59668, flags: TUPLE_F_OUT | TUPLE_F_SERVICE }),
      value: ctValue({ lifetime: 475561, rxBytes: 7, txFlagsSeen: 0x12, lastTxReport: 453961, flags: CT_F_SEEN_NON_SYN, revNat: 5, backendId: 2 }),
    },
    {
      key: ctKey({ saddr: '10.0.1.90', daddr: '10.0.1.108', sport: 59668, dport: 80, flags: TUPLE_F_IN }),
      value: ctValue({
        lifetime: 475561, rxPackets: 2, rxBytes: 140, rxFlagsSeen: 0x12, lastRxReport: 453961, txPackets: 1, txBytes: 74, txFlagsSeen: 0x12,
        lastTxReport: 453961, flags: CT_F_SEEN_NON_SYN, sourceSecurityId: 27453,
      }),
    },
  ],
  [CT_ANY_MAP]: [
    { key: ctKey({ daddr: '10.5.2.101', saddr: '10.4.9.11', dport: 47153, sport: 0, proto: 1, flags: TUPLE_F_OUT }), value: ctValue({ lifetime: 1987951, txPackets: 1, txBytes: 50, lastTxReport: 1987891 }) },
  ],
  [LB_SERVICES_MAP]: [
    { key: { address: '10.108.12.195', port: 80, slot: 0, proto: 6, scope: 0 }, value: { backendId: 0, count: 2, revNat: 16, flags: 0, flags2: 0 } },
    { key: { address: '10.108.12.195', port: 80, slot: 1, proto: 6, scope: 0 }, value: { backendId: 2, count: 0, revNat: 16, flags: 0, flags2: 0 } },
    { key: { address: '10.108.12.195', port: 80, slot: 2, proto: 6, scope: 0 }, value: { backendId: 1, count: 0, revNat: 16, flags: 0, flags2: 0 } },
    { key: { address: '10.96.0.10', port: 53, slot: 0, proto: 17, scope: 0 }, value: { backendId: 10800, count: 0, revNat: 2, flags: SVC_FLAG_AFFINITY, flags2: 0 } },
  ],
  [LB_BACKENDS_MAP]: [
    { key: { id: 1 }, value: { address: '172.16.2.157', port: 80, proto: 6, state: 0 } },
    { key: { id: 2 }, value: { address: '172.16.1.234', port: 80, proto: 6, state: 0 } },
  ],
  [LB_REVNAT_MAP]: [
    { key: { id: 16 }, value: { address: '10.108.12.195', port: 80 } },
    { key: { id: 2 }, value: { address: '10.96.0.10', port: 53 } },
  ],
  [LB_AFFINITY_MAP]: [{ key: { client: '172.16.0.162', revNat: 16 }, value: { lastUsed: 1234.5, backendId: 1 } }],
  [LB_MAGLEV_MAP]: [{ key: { id: 16 }, value: { backendIds: [1, 2, 1, 2, 1, 2, 2] } }],
  [policyMapName(EP)]: [
    { key: policyKey(27453, 8080, 6), value: policyValue(41535, 165) },
    { key: policyKey(0, 0, 0), value: policyValue(99, 9) },
    { key: policyKey(CIDR_ID, 443, 6, true), value: policyValue(0, 0) },
  ],
  [PROXY_MAP]: [{ key: { client: '172.16.0.162', port: 44718, proto: 6 }, value: { origAddress: '10.96.41.44', origPort: 80, proxyPort: 10001, upstreamPort: 20001, endpointId: EP } }],
  [THROTTLE_MAP]: [{ key: { endpointId: 904 }, value: { bitsPerSec: 10e6, tLastMs: 5120.25, horizonMs: 2000, queued: 3, queueMax: 48 } }],
  [PROXY_UPSTREAM_MAP]: [{ key: { upstreamPort: 20001 }, value: { client: '172.16.0.162', port: 44718, proto: 6 } }],
  [NAT_MAP]: [
    { key: { saddr: '10.5.2.101', daddr: '10.4.6.9', sport: 65204, dport: 0, proto: 1, flags: TUPLE_F_OUT }, value: { created: 1000, needsCt: 1, toAddr: '10.5.2.101', toPort: 65204 } },
    { key: { saddr: '10.4.6.9', daddr: '192.168.10.100', sport: 80, dport: 61000, proto: 6, flags: TUPLE_F_IN }, value: { created: 1000, needsCt: 1, toAddr: '172.20.0.12', toPort: 40522 } },
  ],
  [IPMASQ_MAP]: [{ key: { ip: '203.0.113.0', prefixLen: 24 }, value: { value: 1 } }],
};

const LB_SIZES = { services: 64, backends: 64, maglevTableSize: 7, maglevServices: 32 };
const SPECS: MapSpec[] = [
  ...mapSpecs(), callsSpec(EP), ...ctSpecs({ tcp: 64, any: 64 }), ...lbSpecs(LB_SIZES), policySpec(EP, 64), ...proxySpecs(64), tunnelSpec(), natSpec(64), ipMasqSpec(),
];
const byName = (specs: MapSpec[]) => [...specs].sort((a, b) => a.name.localeCompare(b.name));

function encode(def: MapDef<object, object>, spec: MapSpec, e: { key: object; value: object }) {
  const key = new Uint8Array(spec.keySize);
  const value = new Uint8Array(spec.valueSize);
  def.encodeKey(e.key, key);
  def.encodeValue(e.value, value);
  return { key, value };
}

let state: string;
const maps = new Map<string, AnyMap>();

beforeAll(() => {
  state = mkdtempSync(join(tmpdir(), 'ciliary-catalog-'));
  const reg = new MapRegistry(state, native.mapFile);
  for (const spec of SPECS) {
    const map = reg.open(spec);
    maps.set(spec.name, map);
    const def = mapDefOf(spec.name)!;
    for (const e of SAMPLES[spec.name] ?? []) {
      const { key, value } = encode(def, spec, e);
      expect(map.update(key, 0, value), `${spec.name} update`).toBeGreaterThanOrEqual(0);
    }
  }
  reg.flushAll();
  // What the agent leaves in its local kvstore: the identity allocator's id → labels.
  writeFileSync(join(state, 'kvstore.json'), JSON.stringify({
    'cilium/state/identities/v1/id/27453': 'k8s:app=dashboard',
    'cilium/state/identities/v1/value/k8s:app=dashboard': '27453',
  }));
});
afterAll(() => rmSync(state, { recursive: true, force: true }));

async function cli(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(['--socket', join(state, 'nobody.sock'), '--state-dir', state, ...argv], { out: (s) => (out += s), err: (s) => (err += s) }, {});
  return { code, out, err, lines: out.trimEnd().split('\n') };
}

describe('map catalog', () => {
  it('knows every map the datapath pins, each with samples here', () => {
    for (const spec of SPECS) {
      const def = mapDefOf(spec.name);
      expect(def, spec.name).toBeDefined();
      expect([def!.type, def!.keySize], spec.name).toEqual([spec.type, spec.keySize]);
      if (def!.valueSize) expect(def!.valueSize, spec.name).toBe(spec.valueSize);
      expect(SAMPLES[spec.name]?.length, spec.name).toBeGreaterThan(0);
    }
    expect(new Set(SPECS.map((s) => mapDefOf(s.name)))).toEqual(new Set(CATALOG));
    expect(mapDefOf('cilium_policy_x')).toBeUndefined();
    expect(mapDefOf('cilium_calls_312')).toBeUndefined();
  });

  it('has the specs of the maps a real Datapath pins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-catalog-dp-'));
    try {
      const reg = new MapRegistry(dir, native.mapFile);
      const dp = new Datapath(reg, { ...DEFAULT_DATAPATH_OPTIONS, ct: { tcp: 64, any: 64 }, lb: LB_SIZES, natMax: 64 });
      dp.installPrograms(EP, ENDPOINT_CALLS);
      dp.installPolicyMap(EP, 64);
      const pinned = reg.list().map(({ name, type, keySize, valueSize, maxEntries }) => ({ name, type, keySize, valueSize, maxEntries }));
      expect(byName(pinned)).toEqual(byName([...SPECS.filter((s) => !s.name.startsWith('cilium_proxy4') && s.name !== TUNNEL_MAP), ...proxySpecs(65536)]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('decodes what its encoders wrote, read back from the pinned files', () => {
    const reg = new MapRegistry(state, native.mapFile, { readOnly: true });
    for (const spec of SPECS) {
      const def = mapDefOf(spec.name)!;
      const decoded = dumpEntries(reg.open(reg.specOnDisk(spec.name))).map((e) => e.decoded);
      const want = SAMPLES[spec.name];
      expect(decoded, spec.name).toHaveLength(want.length);
      for (const e of want) expect(decoded, spec.name).toContainEqual({ key: e.key, value: e.value });
      // And the text of `map get` comes from those typed objects, not hex.
      const { key, value } = encode(def, spec, want[0]);
      expect(formatterFor(spec.name)(key, value).value, spec.name).not.toMatch(/^([0-9a-f]{2} )+[0-9a-f]{2}$/);
    }
  });

  it('prints hex for a map it does not know', () => {
    expect(formatterFor('cilium_other')(new Uint8Array([1, 2]), new Uint8Array([255]))).toEqual({ key: '01 02', value: 'ff' });
  });
});

describe('CLI --from-file (agent stopped)', () => {
  it('bpf ct list global: Cilium\'s line per entry, service entries marked', async () => {
    const r = await cli('bpf', 'ct', 'list', 'global', '--from-file');
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.lines).toEqual([
      'TCP OUT 10.96.43.209:80 -> 10.0.1.90:59668 service expires=475561 RxPackets=0 RxBytes=7 RxFlagsSeen=0x00 LastRxReport=0 TxPackets=0 TxBytes=0 TxFlagsSeen=0x12 LastTxReport=453961 Flags=0x0010 [ SeenNonSyn ] RevNAT=5 SourceSecurityID=0 IfIndex=0 BackendID=2',
      'TCP IN 10.0.1.90:59668 -> 10.0.1.108:80 expires=475561 RxPackets=2 RxBytes=140 RxFlagsSeen=0x12 LastRxReport=453961 TxPackets=1 TxBytes=74 TxFlagsSeen=0x12 LastTxReport=453961 Flags=0x0010 [ SeenNonSyn ] RevNAT=0 SourceSecurityID=27453 IfIndex=0',
      'ICMP OUT 10.5.2.101:47153 -> 10.4.9.11:0 expires=1987951 RxPackets=0 RxBytes=0 RxFlagsSeen=0x00 LastRxReport=0 TxPackets=1 TxBytes=50 TxFlagsSeen=0x00 LastTxReport=1987891 Flags=0x0000 [ ] RevNAT=0 SourceSecurityID=0 IfIndex=0',
    ]);
  });

  it('bpf lb list and --revnat: frontends with their backends, rev-NAT ids', async () => {
    expect((await cli('bpf', 'lb', 'list', '--from-file')).lines).toEqual([
      'SERVICE ADDRESS     BACKEND ADDRESS',
      '10.96.0.10:53/UDP   0.0.0.0:0 (2) [ClusterIP, non-routable]',
      '10.108.12.195:80    0.0.0.0:0 (16) [ClusterIP, non-routable]',
      '                    172.16.1.234:80 (16)',
      '                    172.16.2.157:80 (16)',
    ]);
    expect((await cli('bpf', 'lb', 'list', '--revnat', '--from-file')).lines).toEqual(['ID   SERVICE ADDRESS', '2    10.96.0.10:53', '16   10.108.12.195:80']);
  });

  it('bpf policy get ID and --all: identities by their labels from the kvstore and the ipcache', async () => {
    const one = await cli('bpf', 'policy', 'get', String(EP), '--from-file');
    expect(one.err).toBe('');
    const rows = one.lines.map((l) => l.split(/\s{2,}/));
    expect(rows[0]).toEqual(['POLICY', 'DIRECTION', 'LABELS (source:key[=value])', 'PORT/PROTO', 'PROXY PORT', 'AUTH TYPE', 'BYTES', 'PACKETS', 'PREFIX']);
    expect(rows.slice(1)).toEqual([
      ['Allow', 'Ingress', 'ANY', 'ANY', 'NONE', 'disabled', '99', '9', '0'],
      ['Allow', 'Ingress', 'k8s:app=dashboard', '8080/TCP', 'NONE', 'disabled', '41535', '165', '24'],
      ['Allow', 'Egress', 'cidr:10.0.0.0/8', '443/TCP', 'NONE', 'disabled', '0', '0', '24'],
      ['', 'reserved:world'],
    ]);
    const all = await cli('bpf', 'policy', 'get', '--all', '--from-file');
    expect(all.out).toBe(`Endpoint ID: ${EP}\nPath: /sys/fs/bpf/tc/globals/cilium_policy_00312\n${one.out}`);
    expect((await cli('bpf', 'policy', 'get', '7', '--from-file')).err).toContain('endpoint 7 has no policy map');
  });

  it('bpf ipcache, endpoint and proxy lists', async () => {
    expect((await cli('bpf', 'ipcache', 'list', '--from-file')).lines).toEqual([
      'IP PREFIX/ADDRESS   IDENTITY',
      '10.0.0.0/8          identity=16777217 encryptkey=0 tunnelendpoint=0.0.0.0',
      '10.0.0.130/32       identity=3 encryptkey=0 tunnelendpoint=0.0.0.0',
      '10.1.5.0/24         identity=2 encryptkey=0 tunnelendpoint=10.169.72.36',
    ]);
    expect((await cli('bpf', 'endpoint', 'list', '--from-file')).lines).toEqual([
      'IP ADDRESS       LOCAL ENDPOINT INFO',
      '10.242.0.1:0     (localhost)',
      '10.242.0.178:0   id=1583  sec_id=18300  flags=0x0000 ifindex=12  mac=F2:78:5C:6D:DE:3F nodemac=36:C7:3C:43:0A:17',
    ]);
    expect((await cli('bpf', 'proxy', 'list', '--from-file')).lines).toEqual([
      'CLIENT                   REDIRECT',
      '172.16.0.162:44718/TCP   orig=10.96.41.44:80 proxy-port=10001 upstream-port=20001 endpoint=312',
    ]);
    // Seed 000's shape: each remote pod CIDR (:cluster id) → its node IP (:key).
    expect((await cli('bpf', 'tunnel', 'list', '--from-file')).lines).toEqual([
      'TUNNEL         VALUE',
      '172.16.1.0:0   192.168.200.101:0',
      '172.16.2.0:0   192.168.200.102:0',
    ]);
  });

  it('bpf metrics list: Cilium\'s columns, counters that moved', async () => {
    expect((await cli('bpf', 'metrics', 'list', '--from-file')).lines).toEqual([
      'REASON          DIRECTION   PACKETS   BYTES   LINE   FILE',
      'Success         EGRESS      12        1480    0      unknown(0)',
      'Policy denied   INGRESS     3         180     0      unknown(0)',
    ]);
  });

  it('map list and map get decode every map', async () => {
    const list = await cli('map', 'list', '--from-file');
    expect(list.lines.slice(1).map((l) => l.split(/\s+/)[0]).sort()).toEqual(SPECS.map((s) => s.name).sort());
    const backends = (await cli('map', 'get', LB_BACKENDS_MAP, '--from-file')).lines.slice(1).map((l) => l.split(/\s{2,}/));
    expect(backends).toEqual([['1', '172.16.2.157:80/TCP active', 'sync'], ['2', '172.16.1.234:80/TCP active', 'sync']]);
    const calls = (await cli('map', 'get', callsSpec(EP).name, '--from-file')).lines.slice(1).map((l) => l.split(/\s{2,}/));
    expect(calls).toEqual([['7 (CILIUM_CALL_IPV4_FROM_LXC)', 'prog_id=1', 'sync']]);
    const maglev = (await cli('map', 'get', LB_MAGLEV_MAP, '--from-file')).lines.slice(1).map((l) => l.split(/\s{2,}/));
    expect(maglev).toEqual([['revnat=16', 'table of 7: backend×positions 1×3 2×4', 'sync']]);
    const json = JSON.parse((await cli('map', 'get', PROXY_UPSTREAM_MAP, '--from-file', '-o', 'json')).out);
    expect(json).toEqual([{ key: '20001', value: 'client=172.16.0.162:44718/TCP', decoded: SAMPLES[PROXY_UPSTREAM_MAP][0] }]);
    for (const spec of SPECS) {
      const r = await cli('map', 'get', spec.name, '--from-file');
      expect(r.code, spec.name).toBe(0);
      expect(r.out, spec.name).not.toMatch(/\b[0-9a-f]{2} [0-9a-f]{2} [0-9a-f]{2}\b/);
    }
  });

  it('bpf nat list and flush --from-file: Cilium\'s line shape, created seconds ago from the monotonic clock', async () => {
    const lines = (await cli('bpf', 'nat', 'list', '--from-file')).lines;
    expect(lines).toHaveLength(2);
    expect(lines).toContainEqual(expect.stringMatching(/^ICMP OUT 10\.5\.2\.101:65204 -> 10\.4\.6\.9:0 XLATE_SRC 10\.5\.2\.101:65204 Created=\d+sec ago NeedsCT=1$/));
    expect(lines).toContainEqual(expect.stringMatching(/^TCP IN 10\.4\.6\.9:80 -> 192\.168\.10\.100:61000 XLATE_DST 172\.20\.0\.12:40522 Created=\d+sec ago NeedsCT=1$/));
    expect(await cli('bpf', 'nat', 'flush', '--from-file')).toMatchObject({ code: 0, out: 'Flushed 2 entries from cilium_snat_v4_external\n' });
    expect(await cli('bpf', 'nat', 'list', '--from-file')).toMatchObject({ code: 0, out: '' });
  });

  it('bpf ct flush global --from-file empties both CT files when no agent answers', async () => {
    expect(await cli('bpf', 'ct', 'flush', 'global', '--from-file')).toMatchObject({ code: 0, out: 'Flushed 3 entries from cilium_ct4_global and cilium_ct_any4_global\n' });
    expect(await cli('bpf', 'ct', 'list', 'global', '--from-file')).toMatchObject({ code: 0, out: '' });
  });

  it('names a missing state directory or map', async () => {
    expect((await cli('map', 'list', '--from-file', '--state-dir', join(state, 'nope'))).err).toContain('no pinned maps in');
    expect((await cli('bpf', 'ct', 'list', 'global', '--from-file', '--state-dir', join(state, 'nope'))).err).toContain('map "cilium_ct4_global" not found');
    expect((await cli('map', 'get', 'cilium_nope', '--from-file')).err).toContain('map "cilium_nope" not found');
  });
});
