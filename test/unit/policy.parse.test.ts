import { describe, expect, it } from 'vitest';
import YAML, { LineCounter } from 'yaml';
import { parsePolicy, PolicyError, yamlLineMapper, pathSegments, type PolicyRules } from '../../src/policy/index.ts';

const RULE1 = `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "rule1"
spec:
  description: "L3-L4 policy to restrict deathstar access to empire ships only"
  endpointSelector:
    matchLabels:
      org: empire
      class: deathstar
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: empire
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`;

function parseYaml(text: string): PolicyRules {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter });
  return parsePolicy(doc.toJS(), { document: 1, lines: yamlLineMapper(doc, lineCounter) });
}

function errorOf(obj: unknown): PolicyError {
  try {
    parsePolicy(obj);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return e as PolicyError;
  }
  throw new Error('expected a PolicyError');
}

const cnp = (spec: unknown, extra: Record<string, unknown> = {}) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'p' }, spec, ...extra });
const sel = { matchLabels: { app: 'web' } };

describe('parsePolicy: CiliumNetworkPolicy', () => {
  it('parses the Star Wars rule1 with the namespace injected into both selectors', () => {
    const p = parseYaml(RULE1);
    expect(p).toMatchObject({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', warnings: [] });
    expect(p.rules).toHaveLength(1);
    const r = p.rules[0];
    expect(r.description).toMatch(/deathstar/);
    expect(r.subject.toString()).toBe('any:class In (deathstar) & any:org In (empire) & k8s:io.kubernetes.pod.namespace In (default)');
    expect(r.ingress).toHaveLength(1);
    const peer = r.ingress![0].peers![0];
    expect(peer.kind === 'endpoints' && peer.selector.toString()).toBe('any:org In (empire) & k8s:io.kubernetes.pod.namespace In (default)');
    expect(r.ingress![0].toPorts).toEqual([{ ports: [{ port: 80, protocol: 'TCP' }] }]);
    expect(r.egress).toBeUndefined();
    expect(r.labels).toEqual([
      'k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy',
      'k8s:io.cilium.k8s.policy.name=rule1',
      'k8s:io.cilium.k8s.policy.namespace=default',
    ]);
    expect(p.original).toMatchObject({ metadata: { name: 'rule1' } });
  });

  it('keeps metadata.namespace, accepts specs lists and spec labels', () => {
    const p = parsePolicy({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'two', namespace: 'prod' },
      specs: [
        { endpointSelector: sel, ingress: [{}], labels: [{ key: 'team', value: 'a', source: 'user' }] },
        { endpointSelector: {}, egress: [{ toEntities: ['world'] }] },
      ],
    });
    expect(p.namespace).toBe('prod');
    expect(p.rules).toHaveLength(2);
    expect(p.rules[0].labels).toContain('user:team=a');
    expect(p.rules[1].subject.toString()).toBe('k8s:io.kubernetes.pod.namespace In (prod)');
  });

  it('forces the policy namespace on the subject selector, with a warning when another was named', () => {
    const p = parsePolicy(cnp({ endpointSelector: { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'other' } }, ingress: [{}] }));
    expect(p.rules[0].subject.toString()).toBe('k8s:io.kubernetes.pod.namespace In (default)');
    expect(p.warnings[0]).toMatch(/namespace other replaced/);
  });

  it('does not inject into a peer selector that names the namespace', () => {
    const p = parsePolicy(cnp({ endpointSelector: sel, ingress: [{ fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s-app': 'kube-dns' } }] }] }));
    const peer = p.rules[0].ingress![0].peers![0];
    expect(peer.kind === 'endpoints' && peer.selector.toString()).toBe('any:k8s-app In (kube-dns) & k8s:io.kubernetes.pod.namespace In (kube-system)');
  });

  it('CiliumClusterwideNetworkPolicy: no namespace, peers only required to be pods', () => {
    const p = parsePolicy({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'cw', namespace: 'ignored' }, spec: { endpointSelector: sel, ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }, {}] }] } });
    expect(p.namespace).toBeUndefined();
    expect(p.rules[0].subject.toString()).toBe('any:app In (web)');
    const peers = p.rules[0].ingress![0].peers!.map((x) => (x.kind === 'endpoints' ? x.selector.toString() : ''));
    expect(peers).toEqual(['any:org In (empire) & k8s:io.kubernetes.pod.namespace Exists', 'k8s:io.kubernetes.pod.namespace Exists']);
    expect(p.rules[0].labels).not.toContain('k8s:io.cilium.k8s.policy.namespace=ignored');
  });

  it('parses every peer and L4 form', () => {
    const p = parsePolicy(
      cnp({
        endpointSelector: sel,
        enableDefaultDeny: { ingress: false },
        ingress: [
          { fromEntities: ['host', 'remote-node', 'world-ipv4'] },
          { fromCIDR: ['10.1.2.3', '192.168.0.0/16'] },
          { fromCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.96.0.0/12'] }], toPorts: [{ ports: [{ port: 8080, endPort: 8090, protocol: 'tcp' }, { port: 'http' }] }] },
          { icmps: [{ fields: [{ type: 8 }, { type: 'EchoRequest', family: 'IPv6' }] }] },
        ],
        egressDeny: [{ toEndpoints: [{}], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }] }] }],
        egress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/api/.*', headers: ['X-A: 1'], headerMatches: [{ name: 'x-b', value: 'v' }] }, {}] } }] }],
      }),
    );
    const r = p.rules[0];
    expect(r.enableDefaultDeny).toEqual({ ingress: false });
    expect(r.ingress![0].peers).toEqual([
      { kind: 'entity', entity: 'host' },
      { kind: 'entity', entity: 'remote-node' },
      { kind: 'entity', entity: 'world' },
    ]);
    expect(r.ingress![1].peers).toEqual([
      { kind: 'cidr', cidr: '10.1.2.3/32', except: [] },
      { kind: 'cidr', cidr: '192.168.0.0/16', except: [] },
    ]);
    expect(r.ingress![2].peers).toEqual([{ kind: 'cidr', cidr: '10.0.0.0/8', except: ['10.96.0.0/12'] }]);
    expect(r.ingress![2].toPorts[0].ports).toEqual([
      { port: 8080, endPort: 8090, protocol: 'TCP' },
      { port: 0, name: 'http', protocol: 'ANY' },
    ]);
    expect(r.ingress![3].peers).toBeUndefined();
    expect(r.ingress![3].icmps).toEqual([
      { family: 'IPv4', type: 8 },
      { family: 'IPv6', type: 128 },
    ]);
    expect(r.egressDeny![0].toPorts[0].ports).toEqual([{ port: 53, protocol: 'ANY' }]);
    expect(r.egress![0].toPorts[0].http).toEqual([{ method: 'GET', path: '/api/.*', headers: ['X-A: 1'], headerMatches: [{ name: 'x-b', value: 'v' }] }, {}]);
  });

  it('keeps an empty section distinct from a missing one, and [{}] as a rule that selects nothing', () => {
    const p = parsePolicy(cnp({ endpointSelector: sel, ingress: [], egress: [{}] }));
    expect(p.rules[0].ingress).toEqual([]);
    expect(p.rules[0].egress).toEqual([{ toPorts: [], icmps: [] }]);
    expect(p.rules[0].ingressDeny).toBeUndefined();
  });

  it('accepts DNS rules (enforced by the DNS proxy), as in the L7 visibility lab', () => {
    const p = parsePolicy(cnp({ endpointSelector: sel, egress: [{ toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] }] }));
    expect(p.rules[0].egress![0].toPorts[0].dns).toEqual([{ matchPattern: '*' }]);
  });
});

describe('parsePolicy: validation errors name the field', () => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['missing name', { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: {}, spec: { endpointSelector: {} } }, 'metadata.name', /required/],
    ['missing spec', { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'x' } }, 'spec', /required/],
    ['unknown kind', { apiVersion: 'v1', kind: 'Pod' }, 'kind', /unsupported kind "Pod"/],
    ['wrong apiVersion', { apiVersion: 'cilium.io/v1', kind: 'CiliumNetworkPolicy', metadata: { name: 'x' }, spec: {} }, 'apiVersion', /cilium.io\/v2/],
    ['missing endpointSelector', cnp({ ingress: [] }), 'spec.endpointSelector', /required/],
    ['nodeSelector in a namespaced policy', cnp({ nodeSelector: {} }), 'spec.nodeSelector', /only allowed in a CiliumClusterwideNetworkPolicy/],
    ['unknown rule field', cnp({ endpointSelector: sel, ingres: [] }), 'spec.ingres', /unknown field/],
    ['unknown peer field', cnp({ endpointSelector: sel, ingress: [{ fromEndpoint: [] }] }), 'spec.ingress[0].fromEndpoint', /unknown field/],
    ['toFQDNs in egressDeny', cnp({ endpointSelector: sel, egressDeny: [{ toFQDNs: [{ matchName: 'a.com' }] }] }), 'spec.egressDeny[0].toFQDNs', /not allowed in egressDeny/],
    ['toFQDNs with both matchers', cnp({ endpointSelector: sel, egress: [{ toFQDNs: [{ matchName: 'a.com', matchPattern: '*.a.com' }] }] }), 'spec.egress[0].toFQDNs[0].matchPattern', /only one of matchName or matchPattern/],
    ['toFQDNs without a matcher', cnp({ endpointSelector: sel, egress: [{ toFQDNs: [{}] }] }), 'spec.egress[0].toFQDNs[0]', /needs matchName or matchPattern/],
    ['bad matchName', cnp({ endpointSelector: sel, egress: [{ toFQDNs: [{ matchName: 'a b.com' }] }] }), 'spec.egress[0].toFQDNs[0].matchName', /not a DNS name/],
    ['wildcard in matchName', cnp({ endpointSelector: sel, egress: [{ toFQDNs: [{ matchName: '*.a.com' }] }] }), 'spec.egress[0].toFQDNs[0].matchName', /not a DNS name/],
    ['bad matchPattern', cnp({ endpointSelector: sel, egress: [{ toFQDNs: [{ matchPattern: 'a/*.com' }] }] }), 'spec.egress[0].toFQDNs[0].matchPattern', /not a DNS pattern/],
    ['inner ** in matchPattern', cnp({ endpointSelector: sel, egress: [{ toFQDNs: [{ matchPattern: 'a.**.com' }] }] }), 'spec.egress[0].toFQDNs[0].matchPattern', /only allowed as the leading label/],
    ['toFQDNs with toEndpoints', cnp({ endpointSelector: sel, egress: [{ toEndpoints: [{}], toFQDNs: [{ matchName: 'a.com' }] }] }), 'spec.egress[0].toFQDNs', /combining toEndpoints and toFQDNs/],
    ['toServices without a service', cnp({ endpointSelector: sel, egress: [{ toServices: [{}] }] }), 'spec.egress[0].toServices[0]', /exactly one of k8sService or k8sServiceSelector/],
    ['toServices without serviceName', cnp({ endpointSelector: sel, egress: [{ toServices: [{ k8sService: { namespace: 'x' } }] }] }), 'spec.egress[0].toServices[0].k8sService.serviceName', /expected a string/],
    ['toServices on ingress', cnp({ endpointSelector: sel, ingress: [{ toServices: [] }] }), 'spec.ingress[0].toServices', /unknown field/],
    ['bad operator', cnp({ endpointSelector: { matchExpressions: [{ key: 'app', operator: 'Equals', values: ['a'] }] } }), 'spec.endpointSelector.matchExpressions[0].operator', /unknown operator "Equals"/],
    ['In without values', cnp({ endpointSelector: { matchExpressions: [{ key: 'app', operator: 'In' }] } }), 'spec.endpointSelector.matchExpressions[0].values', /at least one value/],
    ['bad CIDR', cnp({ endpointSelector: sel, egress: [{ toCIDR: ['10.0.0.300/8'] }] }), 'spec.egress[0].toCIDR[0]', /invalid CIDR "10.0.0.300\/8"/],
    ['bad prefix length', cnp({ endpointSelector: sel, egress: [{ toCIDR: ['10.0.0.0/33'] }] }), 'spec.egress[0].toCIDR[0]', /invalid CIDR/],
    ['except outside cidr', cnp({ endpointSelector: sel, egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }] }] }), 'spec.egress[0].toCIDRSet[0].except[0]', /not inside 10.0.0.0\/8/],
    ['port out of range', cnp({ endpointSelector: sel, ingress: [{ toPorts: [{ ports: [{ port: 70000 }] }] }] }), 'spec.ingress[0].toPorts[0].ports[0].port', /^spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port: 70000 is out of range 0-65535$/],
    ['endPort < port', cnp({ endpointSelector: sel, ingress: [{ toPorts: [{ ports: [{ port: 80, endPort: 79 }] }] }] }), 'spec.ingress[0].toPorts[0].ports[0].endPort', /endPort 79 is less than port 80/],
    ['endPort with a named port', cnp({ endpointSelector: sel, ingress: [{ toPorts: [{ ports: [{ port: 'http', endPort: 90 }] }] }] }), 'spec.ingress[0].toPorts[0].ports[0].endPort', /named port/],
    ['bad port name', cnp({ endpointSelector: sel, ingress: [{ toPorts: [{ ports: [{ port: 'Not_A_Name' }] }] }] }), 'spec.ingress[0].toPorts[0].ports[0].port', /neither a port number nor a valid port name/],
    ['unknown entity', cnp({ endpointSelector: sel, ingress: [{ fromEntities: ['galaxy'] }] }), 'spec.ingress[0].fromEntities[0]', /unknown entity "galaxy"/],
    ['unknown protocol', cnp({ endpointSelector: sel, ingress: [{ toPorts: [{ ports: [{ port: 80, protocol: 'QUIC' }] }] }] }), 'spec.ingress[0].toPorts[0].ports[0].protocol', /unknown protocol "QUIC"/],
    ['ICMP as a port protocol', cnp({ endpointSelector: sel, ingress: [{ toPorts: [{ ports: [{ port: 0, protocol: 'ICMP' }] }] }] }), 'spec.ingress[0].toPorts[0].ports[0].protocol', /use icmps/],
    ['L7 in ingressDeny', cnp({ endpointSelector: sel, ingressDeny: [{ toPorts: [{ ports: [{ port: 80, protocol: 'TCP' }], rules: { http: [{}] } }] }] }), 'spec.ingressDeny[0].toPorts[0].rules', /L7 rules are not allowed in ingressDeny\/egressDeny/],
    ['L7 in egressDeny', cnp({ endpointSelector: sel, egressDeny: [{ toPorts: [{ ports: [{ port: 80 }], rules: { http: [] } }] }] }), 'spec.egressDeny[0].toPorts[0].rules', /not allowed/],
    ['HTTP on UDP', cnp({ endpointSelector: sel, ingress: [{ toPorts: [{ ports: [{ port: 80, protocol: 'UDP' }], rules: { http: [{}] } }] }] }), 'spec.ingress[0].toPorts[0].ports[0].protocol', /HTTP rules need protocol TCP/],
    ['bad path regex', cnp({ endpointSelector: sel, ingress: [{ toPorts: [{ ports: [{ port: 80 }], rules: { http: [{ path: '/v1/(' }] } }] }] }), 'spec.ingress[0].toPorts[0].rules.http[0].path', /invalid regular expression/],
    ['DNS rule with both selectors', cnp({ endpointSelector: sel, egress: [{ toPorts: [{ ports: [{ port: 53 }], rules: { dns: [{ matchName: 'a.example', matchPattern: '*' }] } }] }] }), 'spec.egress[0].toPorts[0].rules.dns[0]', /only one of matchName or matchPattern/],
    ['DNS rule with odd characters', cnp({ endpointSelector: sel, egress: [{ toPorts: [{ ports: [{ port: 53 }], rules: { dns: [{ matchPattern: 'a/b.example' }] } }] }] }), 'spec.egress[0].toPorts[0].rules.dns[0].matchPattern', /is not a DNS pattern/],
    ['DNS rule on SCTP', cnp({ endpointSelector: sel, egress: [{ toPorts: [{ ports: [{ port: 53, protocol: 'SCTP' }], rules: { dns: [{ matchPattern: '*' }] } }] }] }), 'spec.egress[0].toPorts[0].ports[0].protocol', /DNS rules need protocol UDP, TCP or ANY/],
    ['kafka rules', cnp({ endpointSelector: sel, ingress: [{ toPorts: [{ ports: [{ port: 9092 }], rules: { kafka: [] } }] }] }), 'spec.ingress[0].toPorts[0].rules.kafka', /not supported/],
    ['two L3 kinds in one rule', cnp({ endpointSelector: sel, ingress: [{ fromEndpoints: [{}], fromCIDR: ['1.1.1.1/32'] }] }), 'spec.ingress[0].fromCIDR', /combining fromEndpoints and fromCIDR/],
    ['icmps with toPorts', cnp({ endpointSelector: sel, ingress: [{ toPorts: [{ ports: [{ port: 80 }] }], icmps: [{ fields: [{ type: 8 }] }] }] }), 'spec.ingress[0].icmps', /cannot be combined with toPorts/],
    ['ICMP type out of range', cnp({ endpointSelector: sel, ingress: [{ icmps: [{ fields: [{ type: 300 }] }] }] }), 'spec.ingress[0].icmps[0].fields[0].type', /out of range 0-255/],
    ['enableDefaultDeny not a bool', cnp({ endpointSelector: sel, enableDefaultDeny: { ingress: 'no' } }), 'spec.enableDefaultDeny.ingress', /true or false/],
    ['peers not a list', cnp({ endpointSelector: sel, ingress: [{ fromEndpoints: { matchLabels: {} } }] }), 'spec.ingress[0].fromEndpoints', /expected a list/],
    ['IPv6 CIDR', cnp({ endpointSelector: sel, egress: [{ toCIDR: ['2001:db8::/32'] }] }), 'spec.egress[0].toCIDR[0]', /IPv6/],
  ];
  it.each(cases)('%s', (_name, obj, path, message) => {
    const e = errorOf(obj);
    expect(e.path).toBe(path);
    expect(e.message).toMatch(message);
    expect(e.message.startsWith(`${path}: `)).toBe(true);
  });

  it('maps the path to a YAML line with the line mapper', () => {
    const text = RULE1.replace('port: "80"', 'port: "70000"');
    let err: PolicyError | undefined;
    try {
      parseYaml(text);
    } catch (e) {
      err = e as PolicyError;
    }
    expect(err?.path).toBe('spec.ingress[0].toPorts[0].ports[0].port');
    expect(err?.line).toBe(17);
    expect(err?.message).toBe('spec.ingress[0].toPorts[0].ports[0].port: 70000 is out of range 0-65535 (document 1, line 17)');
  });

  it('points an unknown field at its key line', () => {
    const text = RULE1.replace('  - fromEndpoints:', '  - fromEndpoint:');
    expect(() => parseYaml(text)).toThrow(/spec\.ingress\[0\]\.fromEndpoint: unknown field .*\(document 1, line 12\)/);
  });

  it('splits paths into YAML segments', () => {
    expect(pathSegments('spec.ingress[0].toPorts[1].ports')).toEqual(['spec', 'ingress', 0, 'toPorts', 1, 'ports']);
    expect(pathSegments('spec.endpointSelector.matchLabels["k8s:app.kubernetes.io/name"]')).toEqual(['spec', 'endpointSelector', 'matchLabels', 'k8s:app.kubernetes.io/name']);
  });
});

describe('parsePolicy: Kubernetes NetworkPolicy', () => {
  const knp = (spec: unknown) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'np', namespace: 'shop' }, spec });

  it('translates podSelector, peers and ports', () => {
    const p = parsePolicy(
      knp({
        podSelector: { matchLabels: { app: 'db' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { role: 'frontend' } } },
              { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ops' } }, podSelector: { matchLabels: { role: 'admin' } } },
              { namespaceSelector: {} },
              { ipBlock: { cidr: '172.17.0.0/16', except: ['172.17.1.0/24'] } },
            ],
            ports: [{ port: 5432 }, { port: 'metrics', protocol: 'UDP' }, { port: 32000, endPort: 32768 }],
          },
        ],
      }),
    );
    expect(p).toMatchObject({ kind: 'NetworkPolicy', namespace: 'shop', name: 'np' });
    const r = p.rules[0];
    expect(r.subject.toString()).toBe('k8s:app In (db) & k8s:io.kubernetes.pod.namespace In (shop)');
    const peers = r.ingress![0].peers!.map((x) => (x.kind === 'endpoints' ? x.selector.toString() : x));
    expect(peers).toEqual([
      'k8s:io.kubernetes.pod.namespace In (shop) & k8s:role In (frontend)',
      'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name In (ops) & k8s:role In (admin)',
      'k8s:io.kubernetes.pod.namespace Exists',
      { kind: 'cidr', cidr: '172.17.0.0/16', except: ['172.17.1.0/24'] },
    ]);
    expect(r.ingress![0].toPorts).toEqual([
      {
        ports: [
          { port: 5432, protocol: 'TCP' },
          { port: 0, name: 'metrics', protocol: 'UDP' },
          { port: 32000, endPort: 32768, protocol: 'TCP' },
        ],
      },
    ]);
    expect(r.egress).toBeUndefined();
    expect(r.labels[0]).toBe('k8s:io.cilium.k8s.policy.derived-from=NetworkPolicy');
  });

  it('an empty rule allows everyone; a listed policyType without rules denies all', () => {
    const allowAll = parsePolicy(knp({ podSelector: {}, ingress: [{}] }));
    expect(allowAll.rules[0].ingress).toEqual([{ peers: [{ kind: 'entity', entity: 'all' }], toPorts: [], icmps: [] }]);
    const denyAll = parsePolicy(knp({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] }));
    expect(denyAll.rules[0].ingress).toEqual([{ peers: [], toPorts: [], icmps: [] }]);
    expect(denyAll.rules[0].egress).toEqual([{ peers: [], toPorts: [], icmps: [] }]);
  });

  it('follows policyTypes: implied Ingress, Egress only with egress rules, listed types only', () => {
    const implied = parsePolicy(knp({ podSelector: {}, egress: [{ ports: [{ port: 53, protocol: 'UDP' }] }] }));
    expect(implied.rules[0].ingress).toHaveLength(1);
    expect(implied.rules[0].egress![0]).toEqual({ peers: [{ kind: 'entity', entity: 'all' }], toPorts: [{ ports: [{ port: 53, protocol: 'UDP' }] }], icmps: [] });
    const egressOnly = parsePolicy(knp({ podSelector: {}, policyTypes: ['Egress'], ingress: [{}] }));
    expect(egressOnly.rules[0].ingress).toBeUndefined();
  });

  it('rejects bad NetworkPolicies with paths', () => {
    expect(errorOf(knp({ podSelector: {}, policyTypes: ['Both'] })).path).toBe('spec.policyTypes[0]');
    expect(errorOf(knp({})).path).toBe('spec.podSelector');
    expect(errorOf(knp({ podSelector: {}, ingress: [{ from: [{}] }] })).path).toBe('spec.ingress[0].from[0]');
    expect(errorOf(knp({ podSelector: {}, ingress: [{ ports: [{ port: 80, protocol: 'ANY' }] }] })).path).toBe('spec.ingress[0].ports[0].protocol');
    expect(errorOf(knp({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] })).path).toBe('spec.ingress[0].from[0].ipBlock');
    expect(errorOf({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'x' }, spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: 'nope' } }] }] } }).path).toBe('spec.ingress[0].from[0].ipBlock.cidr');
  });
});
