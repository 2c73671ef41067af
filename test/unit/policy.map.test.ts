import { describe, expect, it } from 'vitest';
import { securityLabels } from '../../src/identity/labels.ts';
import { BPF_ANY, LpmTrieMap, mapByteSize, memoryStorage, openMap, type MapSpec } from '../../src/maps/index.ts';
import {
  blockContains,
  decodeEntry,
  encodeKey,
  encodeValue,
  formatPolicyEntries,
  parsePolicy,
  POLICY_KEY_SIZE,
  POLICY_VALUE_SIZE,
  PolicyRepository,
  portBlocks,
  reservedIdentityLabels,
  type PolicyEntry,
  type ResolveContext,
} from '../../src/policy/index.ts';
import { policyMapName, V_FLAGS, V_PROXY_PORT, FLAG_DENY } from '../../src/maps/cilium/policy.ts';

const entry = (e: Partial<PolicyEntry>): PolicyEntry => ({ identity: 0, egress: false, protocol: 0, port: 0, portPrefixLen: 0, deny: false, proxyPort: 0, ruleLabels: [], ...e });

describe('port blocks', () => {
  it('splits ranges into aligned prefix blocks', () => {
    expect(portBlocks(8080, 8090)).toEqual([
      { port: 8080, prefixLen: 13 },
      { port: 8088, prefixLen: 15 },
      { port: 8090, prefixLen: 16 },
    ]);
    expect(portBlocks(80, 80)).toEqual([{ port: 80, prefixLen: 16 }]);
    expect(portBlocks(0, 65535)).toEqual([{ port: 0, prefixLen: 0 }]);
    expect(portBlocks(1, 4)).toEqual([
      { port: 1, prefixLen: 16 },
      { port: 2, prefixLen: 15 },
      { port: 4, prefixLen: 16 },
    ]);
    const blocks = portBlocks(30000, 32767);
    expect(blocks.reduce((n, b) => n + 2 ** (16 - b.prefixLen), 0)).toBe(2768);
    expect(blockContains({ port: 8080, prefixLen: 13 }, { port: 8087, prefixLen: 16 })).toBe(true);
    expect(blockContains({ port: 8080, prefixLen: 13 }, { port: 8088, prefixLen: 16 })).toBe(false);
  });
});

describe('policy map layout', () => {
  it('has the sizes and name the datapath expects', () => {
    expect(POLICY_KEY_SIZE).toBe(12);
    expect(POLICY_VALUE_SIZE).toBe(24);
    expect(policyMapName(1972)).toBe('cilium_policy_1972');
  });

  it('encodes the key: prefix LE, identity BE, direction, protocol, port BE', () => {
    const k = new Uint8Array(POLICY_KEY_SIZE);
    encodeKey(entry({ identity: 21144, egress: false, protocol: 6, port: 80, portPrefixLen: 16 }), k);
    expect([...k]).toEqual([64, 0, 0, 0, 0, 0, 0x52, 0x98, 0, 6, 0, 80]);
    encodeKey(entry({ identity: 0, egress: true, protocol: 6, port: 8083, portPrefixLen: 13 }), k);
    expect([...k]).toEqual([61, 0, 0, 0, 0, 0, 0, 0, 1, 6, 0x1f, 0x90]); // host bits of the block cleared: 8080
  });

  it('encodes the value and decodes both back', () => {
    const k = new Uint8Array(POLICY_KEY_SIZE + 4);
    const v = new Uint8Array(POLICY_VALUE_SIZE + 8);
    const e = entry({ identity: 1002, egress: true, protocol: 17, port: 53, portPrefixLen: 16, proxyPort: 10001 });
    encodeKey(e, k, 4);
    encodeValue(e, v, 8, { packets: 9, bytes: 99 });
    expect(v[8 + V_FLAGS]).toBe(0);
    expect(new DataView(v.buffer).getUint16(8 + V_PROXY_PORT, true)).toBe(10001);
    expect(decodeEntry(k, v, 4, 8)).toEqual({ ...e, packets: 9, bytes: 99, authType: 0 });
    encodeValue(entry({ deny: true, proxyPort: 1 }), v, 0);
    expect(v[V_FLAGS] & FLAG_DENY).toBe(1);
    expect(decodeEntry(k, v, 4, 0)).toMatchObject({ deny: true, proxyPort: 0 });
  });
});

describe('bpf policy get', () => {
  it('prints the table of REFERENCE.md', () => {
    const labels = new Map([[1234, ['k8s:app=dashboard']]]);
    const out = formatPolicyEntries(
      [
        { ...entry({}), bytes: 99, packets: 9 },
        { ...entry({ identity: 1234, protocol: 6, port: 8080, portPrefixLen: 16 }), bytes: 41535, packets: 165 },
      ],
      (id) => labels.get(id),
    );
    expect(out).toBe(
      [
        'POLICY   DIRECTION   LABELS (source:key[=value])   PORT/PROTO   PROXY PORT   AUTH TYPE   BYTES   PACKETS   PREFIX',
        'Allow    Ingress     ANY                           ANY          NONE         disabled    99      9         0',
        'Allow    Ingress     k8s:app=dashboard             8080/TCP     NONE         disabled    41535   165       24',
        '',
      ].join('\n'),
    );
  });

  it('prints ranges per block, denies, proxies, reserved labels and multi-label identities', () => {
    const labels = new Map<number, string[]>([...reservedIdentityLabels(), [1002, securityLabels({ org: 'empire' }, 'default', 'default')]]);
    const out = formatPolicyEntries(
      [
        ...portBlocks(8080, 8090).map((b) => entry({ identity: 1, protocol: 6, port: b.port, portPrefixLen: b.prefixLen })),
        entry({ identity: 2, egress: true, deny: true }),
        entry({ identity: 1002, protocol: 6, port: 80, portPrefixLen: 16, proxyPort: 12345 }),
        entry({ identity: 0, protocol: 17, egress: true }),
      ],
      (id) => labels.get(id),
    );
    const lines = out.trimEnd().split('\n').map((l) => l.split(/\s{2,}/));
    expect(lines.slice(1)).toEqual([
      ['Allow', 'Ingress', 'reserved:host', '8080-8087/TCP', 'NONE', 'disabled', '0', '0', '21'],
      ['Allow', 'Ingress', 'reserved:host', '8088-8089/TCP', 'NONE', 'disabled', '0', '0', '23'],
      ['Allow', 'Ingress', 'reserved:host', '8090/TCP', 'NONE', 'disabled', '0', '0', '24'],
      ['Allow', 'Ingress', 'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default', '80/TCP', '12345', 'disabled', '0', '0', '24'],
      ['', 'k8s:io.cilium.k8s.policy.cluster=default'],
      ['', 'k8s:io.cilium.k8s.policy.serviceaccount=default'],
      ['', 'k8s:io.kubernetes.pod.namespace=default'],
      ['', 'k8s:org=empire'],
      ['Deny', 'Egress', 'reserved:world', 'ANY', 'NONE', 'disabled', '0', '0', '0'],
      ['Allow', 'Egress', 'ANY', 'ANY/UDP', 'NONE', 'disabled', '0', '0', '8'],
    ]);
  });
});

// ---- the lookup contract, run on a real LPM map ----

function install(entries: PolicyEntry[]): LpmTrieMap {
  const spec: MapSpec<'lpm_trie'> = { name: 'cilium_policy_1', type: 'lpm_trie', keySize: POLICY_KEY_SIZE, valueSize: POLICY_VALUE_SIZE, maxEntries: 1024 };
  const map = openMap(memoryStorage(mapByteSize(spec)), spec) as LpmTrieMap;
  const k = new Uint8Array(POLICY_KEY_SIZE);
  const v = new Uint8Array(POLICY_VALUE_SIZE);
  entries.forEach((e, i) => {
    encodeKey(e, k);
    encodeValue({ ...e, proxyPort: e.proxyPort ? 10000 + i : 0 }, v); // a distinct "real" port per entry
    expect(map.update(k, 0, v, 0, BPF_ANY)).toBe(0);
  });
  return map;
}

type Verdict = { allow: boolean; proxy: number };

/** Four bucket lookups; deny if any denies; proxy from the first hit (order) or the longest port prefix. */
function lookup(map: LpmTrieMap, identity: number, egress: boolean, proto: number, port: number, pick: 'first-hit' | 'longest'): Verdict {
  const k = new Uint8Array(POLICY_KEY_SIZE);
  const hits: Array<{ off: number; prefix: number; rank: number }> = [];
  const buckets: Array<[number, number]> = [
    [identity, proto],
    [identity, 0],
    [0, proto],
    [0, 0],
  ];
  buckets.forEach(([id, p], rank) => {
    const icmpOnAny = p === 0 && (proto === 1 || proto === 58);
    encodeKey({ identity: id, egress, protocol: p, port: icmpOnAny ? 0 : port, portPrefixLen: icmpOnAny ? 0 : 16 }, k);
    const off = map.lookup(k, 0);
    if (off >= 0) {
      hits.push({ off, prefix: 0, rank });
      // the matched entry's own prefix: find it by decoding every entry is overkill; re-probe instead
      for (let len = 16; len >= 0; len--) {
        encodeKey({ identity: id, egress, protocol: p, port, portPrefixLen: len }, k);
        const exact = map.lookup(k, 0);
        if (exact === off) hits[hits.length - 1].prefix = len;
        else break;
      }
    }
  });
  if (hits.some((h) => map.bytes[h.off + V_FLAGS] & FLAG_DENY)) return { allow: false, proxy: 0 };
  if (hits.length === 0) return { allow: false, proxy: 0 };
  const chosen = pick === 'first-hit' ? hits[0] : [...hits].sort((a, b) => a.prefix - b.prefix || b.rank - a.rank).pop()!;
  return { allow: true, proxy: map.view.getUint16(chosen.off + V_PROXY_PORT, true) };
}

describe('lookup contract over an LPM map', () => {
  const ids = new Map<number, string[]>(reservedIdentityLabels());
  const pods = {
    deathstar: { id: 10, identity: 1001, labels: securityLabels({ org: 'empire', class: 'deathstar' }, 'default', 'default') },
    tiefighter: { id: 11, identity: 1002, labels: securityLabels({ org: 'empire', class: 'tiefighter' }, 'default', 'default') },
    xwing: { id: 12, identity: 1003, labels: securityLabels({ org: 'alliance', class: 'xwing' }, 'default', 'default') },
  };
  for (const p of Object.values(pods)) ids.set(p.identity, p.labels);
  const ctx: ResolveContext = { identities: ids, enforcement: 'default', cidrIdentity: () => 16777217 };
  const resolve = (spec: unknown) => {
    const repo = new PolicyRepository();
    repo.add(parsePolicy({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'p' }, spec: { endpointSelector: { matchLabels: { class: 'deathstar' } }, ...(spec as object) } }));
    const res = repo.resolve(pods.deathstar, ctx);
    return { res, map: install(res.entries) };
  };
  const both = (map: LpmTrieMap, identity: number, proto: number, port: number, egress = false) => {
    const a = lookup(map, identity, egress, proto, port, 'first-hit');
    const b = lookup(map, identity, egress, proto, port, 'longest');
    expect(a).toEqual(b); // the entries make both readings of "most specific" agree
    return a;
  };

  it('rule1: only the empire on 80/TCP; no ICMP', () => {
    const { map } = resolve({ ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] });
    expect(both(map, 1002, 6, 80).allow).toBe(true);
    expect(both(map, 1003, 6, 80).allow).toBe(false);
    expect(both(map, 1002, 6, 81).allow).toBe(false);
    expect(both(map, 1002, 1, 8).allow).toBe(false);
    expect(both(map, 1003, 6, 443, true).allow).toBe(true); // egress not enforced
  });

  it('deny wins whatever the specificity; a broader deny is not hidden by a narrower allow', () => {
    const { map } = resolve({
      ingress: [{ fromEndpoints: [{ matchLabels: { class: 'tiefighter' } }], toPorts: [{ ports: [{ port: 8080, protocol: 'TCP' }, { port: 9000, protocol: 'TCP' }] }] }, { fromEntities: ['all'] }],
      ingressDeny: [{ toPorts: [{ ports: [{ port: 8080, endPort: 8087, protocol: 'TCP' }] }] }, { fromEndpoints: [{ matchLabels: { class: 'xwing' } }] }],
    });
    expect(both(map, 1002, 6, 8080).allow).toBe(false);
    expect(both(map, 1002, 6, 8085).allow).toBe(false);
    expect(both(map, 1002, 6, 9000).allow).toBe(true);
    expect(both(map, 1002, 6, 8088).allow).toBe(true);
    expect(both(map, 1003, 6, 9000).allow).toBe(false);
    expect(both(map, 1003, 1, 8).allow).toBe(false);
    expect(both(map, 2, 17, 53).allow).toBe(true);
  });

  it('L7 is not bypassed by an overlapping L3 allow, under either lookup order', () => {
    const { map } = resolve({
      ingress: [{ fromEndpoints: [{ matchLabels: { class: 'xwing' } }] }, { toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }] }],
    });
    expect(both(map, 1003, 6, 80).proxy).not.toBe(0);
    expect(both(map, 1003, 6, 22)).toEqual({ allow: true, proxy: 0 });
    expect(both(map, 1002, 6, 80).proxy).not.toBe(0);
    expect(both(map, 1002, 6, 22).allow).toBe(false);
  });

  it('a port on protocol ANY does not open ICMP of that type number', () => {
    const { map } = resolve({ ingress: [{ toPorts: [{ ports: [{ port: '8', protocol: 'ANY' }] }] }] });
    expect(both(map, 1002, 17, 8).allow).toBe(true);
    expect(both(map, 1002, 132, 8).allow).toBe(true);
    expect(both(map, 1002, 1, 8).allow).toBe(false);
  });

  it('ICMP entries allow exactly their type', () => {
    const { map } = resolve({ ingress: [{ icmps: [{ fields: [{ type: 8 }] }] }] });
    expect(both(map, 1003, 1, 8).allow).toBe(true);
    expect(both(map, 1003, 1, 0).allow).toBe(false);
    expect(both(map, 1003, 6, 8).allow).toBe(false);
  });
});
