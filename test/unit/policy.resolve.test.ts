import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { securityLabels } from '../../src/identity/labels.ts';
import { formatPortProto, parsePolicy, PolicyRepository, reservedIdentityLabels, type EndpointInfo, type PolicyEntry, type ResolveContext, type ResolvedPolicy } from '../../src/policy/index.ts';

// ---- fixture: the Star Wars demo plus a few neighbours ----
const ns = (labels: Record<string, string>, namespace = 'default', sa = 'default') => securityLabels(labels, namespace, 'default', sa);
const PODS = {
  deathstar: { id: 10, identity: 1001, labels: ns({ org: 'empire', class: 'deathstar' }), namedPorts: { http: { port: 80, protocol: 'TCP' } } },
  tiefighter: { id: 11, identity: 1002, labels: ns({ org: 'empire', class: 'tiefighter' }) },
  xwing: { id: 12, identity: 1003, labels: ns({ org: 'alliance', class: 'xwing' }) },
  kubedns: { id: 13, identity: 1004, labels: ns({ 'k8s-app': 'kube-dns' }, 'kube-system', 'coredns'), namedPorts: { dns: { port: 53, protocol: 'UDP' } } },
  imperial: { id: 14, identity: 1005, labels: ns({ org: 'empire', class: 'shuttle' }, 'imperial') },
} satisfies Record<string, EndpointInfo>;
type PodName = keyof typeof PODS;
const EXISTING_CIDR = 16777316; // a CIDR identity some other policy already made: 10.1.0.0/16

function fixture(extra: Array<[number, string[]]> = []) {
  const identities = new Map<number, string[]>(reservedIdentityLabels());
  for (const p of Object.values(PODS)) identities.set(p.identity, p.labels);
  identities.set(EXISTING_CIDR, ['cidr:10.1.0.0/16', 'reserved:world']);
  for (const [id, l] of extra) identities.set(id, l);
  const cidrIds = new Map<string, number>([['10.1.0.0/16', EXISTING_CIDR]]);
  let next = 16777217;
  const ctx: ResolveContext = {
    identities,
    enforcement: 'default',
    cidrIdentity: (c) => cidrIds.get(c) ?? (cidrIds.set(c, next++), cidrIds.get(c)!),
    namedPortsOf: (id) => (Object.values(PODS) as EndpointInfo[]).find((p) => p.identity === id)?.namedPorts,
  };
  const names = new Map<number, string>([[0, 'ANY'], ...[...reservedIdentityLabels()].map(([id, l]) => [id, l[0].slice('reserved:'.length)] as [number, string])]);
  for (const [n, p] of Object.entries(PODS)) names.set(p.identity, n);
  const nameOf = (id: number) => names.get(id) ?? [...cidrIds].find(([, v]) => v === id)?.[0] ?? String(id);
  return { ctx, cidrIds, nameOf };
}

/** Compact entry text: `in allow tiefighter 80/TCP [proxy]`. */
function show(e: PolicyEntry, nameOf: (id: number) => string): string {
  return `${e.egress ? 'eg' : 'in'} ${e.deny ? 'deny' : 'allow'} ${nameOf(e.identity)} ${formatPortProto(e)}${e.proxyPort ? ' proxy' : ''}`;
}

const cnp = (name: string, spec: unknown, namespace = 'default') => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace }, spec });
const ccnp = (name: string, spec: unknown) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name }, spec });
const knp = (name: string, spec: unknown) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: 'default' }, spec });
const deathstarSel = { matchLabels: { org: 'empire', class: 'deathstar' } };
const fromEmpire80 = { fromEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] };

const RULE1 = YAML.parse(`
apiVersion: "cilium.io/v2"
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
`);
const RULE1_L7 = YAML.parse(YAML.stringify(RULE1).replace('protocol: TCP', 'protocol: TCP\n          rules:\n            http:\n              - method: POST\n                path: /v1/request-landing'));

function resolveFor(policies: unknown[], pod: PodName, opts: Partial<ResolveContext> = {}) {
  const f = fixture();
  const repo = new PolicyRepository();
  for (const p of policies) repo.add(parsePolicy(p));
  const res = repo.resolve(PODS[pod], { ...f.ctx, ...opts });
  return { res, shown: res.entries.map((e) => show(e, f.nameOf)), repo, f };
}

interface Case {
  name: string;
  policies: unknown[];
  pod: PodName;
  ctx?: Partial<ResolveContext>;
  enforced: [ingress: boolean, egress: boolean];
  entries: string[];
  check?: (r: ResolvedPolicy) => void;
}

const OPEN = ['in allow ANY ANY', 'eg allow ANY ANY'];

const CASES: Case[] = [
  // Star Wars
  { name: 'rule1: deathstar allows the tiefighter on 80/TCP only, egress open', policies: [RULE1], pod: 'deathstar', enforced: [true, false], entries: ['in allow deathstar 80/TCP', 'in allow tiefighter 80/TCP', 'eg allow ANY ANY'] },
  { name: 'rule1: xwing is not selected, nothing enforced', policies: [RULE1], pod: 'xwing', enforced: [false, false], entries: OPEN },
  { name: 'rule1: tiefighter is not selected either', policies: [RULE1], pod: 'tiefighter', enforced: [false, false], entries: OPEN },
  { name: 'rule1 is namespaced: an empire pod in another namespace is not a peer', policies: [RULE1], pod: 'deathstar', enforced: [true, false], entries: ['in allow deathstar 80/TCP', 'in allow tiefighter 80/TCP', 'eg allow ANY ANY'], check: (r) => expect(r.entries.some((e) => e.identity === 1005)).toBe(false) },
  {
    name: 'rule1 with HTTP rules: the L7 proxy marker and the rules',
    policies: [RULE1_L7],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in allow deathstar 80/TCP proxy', 'in allow tiefighter 80/TCP proxy', 'eg allow ANY ANY'],
    check: (r) => {
      expect(r.entries[0].l7).toEqual([{ method: 'POST', path: '/v1/request-landing' }]);
      expect(r.entries[0].proxyPort).toBe(1);
      expect(r.entries[0].ruleLabels).toContain('k8s:io.cilium.k8s.policy.name=rule1');
    },
  },
  // peers
  { name: 'fromEndpoints [{}] in a CNP: every pod of the namespace', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{}] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in allow deathstar ANY', 'in allow tiefighter ANY', 'in allow xwing ANY', 'eg allow ANY ANY'] },
  { name: 'fromEndpoints [{}] in a CCNP: every pod of every namespace, nothing reserved', policies: [ccnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{}] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in allow deathstar ANY', 'in allow tiefighter ANY', 'in allow xwing ANY', 'in allow kubedns ANY', 'in allow imperial ANY', 'eg allow ANY ANY'] },
  { name: 'CCNP gets no namespace injection: empire pods in all namespaces', policies: [ccnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in allow deathstar ANY', 'in allow tiefighter ANY', 'in allow imperial ANY', 'eg allow ANY ANY'] },
  { name: 'a peer naming another namespace', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'imperial' } }] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in allow imperial ANY', 'eg allow ANY ANY'] },
  {
    name: 'matchExpressions in a peer',
    policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{ matchExpressions: [{ key: 'class', operator: 'In', values: ['xwing', 'tiefighter'] }, { key: 'org', operator: 'NotIn', values: ['alliance'] }] }] }] })],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in allow tiefighter ANY', 'eg allow ANY ANY'],
  },
  // entities
  { name: 'entity cluster: everything but world and CIDR identities', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEntities: ['cluster'] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in allow host ANY', 'in allow unmanaged ANY', 'in allow health ANY', 'in allow init ANY', 'in allow remote-node ANY', 'in allow kube-apiserver ANY', 'in allow ingress ANY', 'in allow deathstar ANY', 'in allow tiefighter ANY', 'in allow xwing ANY', 'in allow kubedns ANY', 'in allow imperial ANY', 'eg allow ANY ANY'] },
  { name: 'entity world: identity 2 and the CIDR identities', policies: [cnp('p', { endpointSelector: deathstarSel, egress: [{ toEntities: ['world'], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] }] })], pod: 'deathstar', enforced: [false, true], entries: ['in allow ANY ANY', 'eg allow world 443/TCP', 'eg allow 10.1.0.0/16 443/TCP'] },
  { name: 'entity all: the wildcard identity', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEntities: ['all'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in allow ANY 80/TCP', 'eg allow ANY ANY'] },
  { name: 'entities host, remote-node, health, kube-apiserver', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEntities: ['host', 'remote-node'] }], egress: [{ toEntities: ['health', 'kube-apiserver', 'ingress'] }] })], pod: 'deathstar', enforced: [true, true], entries: ['in allow host ANY', 'in allow remote-node ANY', 'eg allow health ANY', 'eg allow kube-apiserver ANY', 'eg allow ingress ANY'] },
  // CIDR
  {
    name: 'toCIDR: the CIDR identity the caller allocates, and the CIDR reported',
    policies: [cnp('p', { endpointSelector: deathstarSel, egress: [{ toCIDR: ['8.8.8.8/32'], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }] }] }] })],
    pod: 'deathstar',
    enforced: [false, true],
    entries: ['in allow ANY ANY', 'eg allow 8.8.8.8/32 53/UDP'],
    check: (r) => expect(r.cidrs).toEqual(['8.8.8.8/32']),
  },
  {
    name: 'toCIDRSet with except: the except prefix gets its own identity and no allow',
    policies: [cnp('p', { endpointSelector: deathstarSel, egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.96.0.0/12'] }] }] })],
    pod: 'deathstar',
    enforced: [false, true],
    // 10.1.0.0/16 (another policy's CIDR identity) lies inside 10/8 and outside the except: allowed too
    entries: ['in allow ANY ANY', 'eg allow 10.0.0.0/8 ANY', 'eg allow 10.1.0.0/16 ANY'],
    check: (r) => expect(r.cidrs).toEqual(['10.0.0.0/8', '10.96.0.0/12']),
  },
  { name: 'toCIDR 0.0.0.0/0 is world itself plus every CIDR identity', policies: [cnp('p', { endpointSelector: deathstarSel, egress: [{ toCIDR: ['0.0.0.0/0'] }] })], pod: 'deathstar', enforced: [false, true], entries: ['in allow ANY ANY', 'eg allow world ANY', 'eg allow 10.1.0.0/16 ANY'] },
  // ports
  { name: 'port range 8080-8090 split into prefix blocks', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ toPorts: [{ ports: [{ port: 8080, endPort: 8090, protocol: 'TCP' }] }] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in allow ANY 8080-8087/TCP', 'in allow ANY 8088-8089/TCP', 'in allow ANY 8090/TCP', 'eg allow ANY ANY'] },
  { name: 'protocol ANY: a protocol-0 entry with the port', policies: [cnp('p', { endpointSelector: deathstarSel, egress: [{ toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }] }] }] })], pod: 'deathstar', enforced: [false, true], entries: ['in allow ANY ANY', 'eg allow ANY 53/ANY'] },
  { name: 'toPorts without peers applies to every peer', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }, { port: '443', protocol: 'TCP' }] }] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in allow ANY 80/TCP', 'in allow ANY 443/TCP', 'eg allow ANY ANY'] },
  { name: 'named port on ingress resolves against the endpoint', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{ matchLabels: { class: 'tiefighter' } }], toPorts: [{ ports: [{ port: 'http' }] }] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in allow tiefighter 80/TCP', 'eg allow ANY ANY'] },
  {
    name: 'unresolvable named port: no entry and a warning',
    policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ toPorts: [{ ports: [{ port: 'grpc', protocol: 'TCP' }] }] }] })],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['eg allow ANY ANY'],
    check: (r) => expect(r.warnings[0]).toMatch(/named port "grpc"\/TCP is not defined by endpoint 10/),
  },
  {
    name: 'named port on egress resolves against each peer',
    policies: [cnp('p', { endpointSelector: { matchLabels: { class: 'xwing' } }, egress: [{ toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system' } }], toPorts: [{ ports: [{ port: 'dns', protocol: 'ANY' }] }] }] })],
    pod: 'xwing',
    enforced: [false, true],
    entries: ['in allow ANY ANY', 'eg allow kubedns 53/UDP'],
  },
  // deny
  {
    name: 'deny wins over allow: a deny entry beside the allow-all',
    policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEntities: ['all'] }], ingressDeny: [{ fromEndpoints: [{ matchLabels: { class: 'xwing' } }] }] })],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in deny xwing ANY', 'in allow ANY ANY', 'eg allow ANY ANY'],
  },
  {
    name: 'an allow more specific than a covering deny is dropped (it would shadow the deny)',
    policies: [RULE1, cnp('deny-tie', { endpointSelector: deathstarSel, ingressDeny: [{ fromEndpoints: [{ matchLabels: { class: 'tiefighter' } }] }] })],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in deny tiefighter ANY', 'in allow deathstar 80/TCP', 'eg allow ANY ANY'],
  },
  {
    name: 'a deny port range covers an exact allowed port',
    policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ toPorts: [{ ports: [{ port: 8080, protocol: 'TCP' }, { port: 9000, protocol: 'TCP' }] }] }], ingressDeny: [{ toPorts: [{ ports: [{ port: 8080, endPort: 8087, protocol: 'TCP' }] }] }] })],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in deny ANY 8080-8087/TCP', 'in allow ANY 9000/TCP', 'eg allow ANY ANY'],
  },
  // enforcement
  { name: 'enforcement always: both directions enforced with no policy', policies: [], pod: 'xwing', ctx: { enforcement: 'always' }, enforced: [true, true], entries: [] },
  { name: 'enforcement never: rule1 has no effect', policies: [RULE1], pod: 'deathstar', ctx: { enforcement: 'never' }, enforced: [false, false], entries: OPEN },
  { name: 'enforcement default, no policy: everything open', policies: [], pod: 'deathstar', enforced: [false, false], entries: OPEN },
  {
    name: 'enableDefaultDeny ingress false: not enforced, the allow-all stays, denies still apply',
    policies: [cnp('p', { endpointSelector: deathstarSel, enableDefaultDeny: { ingress: false }, ingress: [fromEmpire80], ingressDeny: [{ fromEndpoints: [{ matchLabels: { class: 'xwing' } }] }] })],
    pod: 'deathstar',
    enforced: [false, false],
    entries: ['in deny xwing ANY', 'in allow ANY ANY', 'in allow deathstar 80/TCP', 'in allow tiefighter 80/TCP', 'eg allow ANY ANY'],
  },
  {
    name: 'enableDefaultDeny false on one policy, default on another: enforced',
    policies: [cnp('a', { endpointSelector: deathstarSel, enableDefaultDeny: { ingress: false }, ingress: [{ fromEntities: ['host'] }] }), RULE1],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in allow host ANY', 'in allow deathstar 80/TCP', 'in allow tiefighter 80/TCP', 'eg allow ANY ANY'],
  },
  { name: 'a missing section vs an empty list: ingress: [] enforces nothing', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [] })], pod: 'deathstar', enforced: [false, false], entries: OPEN },
  { name: 'ingress: [{}] enforces and allows nothing (default deny)', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{}] })], pod: 'deathstar', enforced: [true, false], entries: ['eg allow ANY ANY'] },
  { name: 'egress-only policy: ingress stays open', policies: [cnp('p', { endpointSelector: deathstarSel, egress: [{ toEndpoints: [{ matchLabels: { class: 'xwing' } }] }] })], pod: 'deathstar', enforced: [false, true], entries: ['in allow ANY ANY', 'eg allow xwing ANY'] },
  { name: 'an ingressDeny section alone enforces ingress', policies: [cnp('p', { endpointSelector: deathstarSel, ingressDeny: [{ fromEntities: ['world'] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in deny world ANY', 'in deny 10.1.0.0/16 ANY', 'eg allow ANY ANY'] },
  { name: 'allow-localhost: the host is allowed in once ingress is enforced', policies: [RULE1], pod: 'deathstar', ctx: { allowLocalhost: true }, enforced: [true, false], entries: ['in allow host ANY', 'in allow deathstar 80/TCP', 'in allow tiefighter 80/TCP', 'eg allow ANY ANY'] },
  // ICMP
  { name: 'icmps: protocol 1 with the type as port; nothing else allowed', policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{ matchLabels: { class: 'xwing' } }], icmps: [{ fields: [{ type: 8, family: 'IPv4' }, { type: 'EchoReply' }] }] }] })], pod: 'deathstar', enforced: [true, false], entries: ['in allow xwing 0/ICMP', 'in allow xwing 8/ICMP', 'eg allow ANY ANY'] },
  { name: 'L4 rules only: ICMP gets no entry (denied)', policies: [RULE1], pod: 'deathstar', enforced: [true, false], entries: ['in allow deathstar 80/TCP', 'in allow tiefighter 80/TCP', 'eg allow ANY ANY'], check: (r) => expect(r.entries.some((e) => e.protocol === 1)).toBe(false) },
  // L7 merging
  {
    name: 'an L4 allow and an L7 allow on the same port: L7 still proxied, rules widened to allow-all',
    policies: [RULE1_L7, cnp('l4', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{ matchLabels: { class: 'tiefighter' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] })],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in allow deathstar 80/TCP proxy', 'in allow tiefighter 80/TCP proxy', 'eg allow ANY ANY'],
    check: (r) => {
      expect(r.entries[0].l7).toEqual([{ method: 'POST', path: '/v1/request-landing' }]);
      expect(r.entries[1].l7).toEqual([{ method: 'POST', path: '/v1/request-landing' }, {}]);
    },
  },
  {
    name: 'an L3-only allow does not bypass an L7 rule for all peers: the overlap gets its own proxied entry',
    policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{ matchLabels: { class: 'xwing' } }] }, { toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }] }] })],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in allow ANY 80/TCP proxy', 'in allow xwing ANY', 'in allow xwing 80/TCP proxy', 'eg allow ANY ANY'],
    check: (r) => expect(r.entries[2].l7).toEqual([{ method: 'GET' }]),
  },
  {
    name: 'L7 rules from two rules on one port add up',
    policies: [cnp('p', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{ matchLabels: { class: 'tiefighter' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }] }, { toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'POST' }] } }] }] })],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in allow ANY 80/TCP proxy', 'in allow tiefighter 80/TCP proxy', 'eg allow ANY ANY'],
    check: (r) => {
      expect(r.entries[0].l7).toEqual([{ method: 'POST' }]);
      expect(r.entries[1].l7).toEqual([{ method: 'GET' }, { method: 'POST' }]);
    },
  },
  {
    name: "the seeds' L7 visibility policy: DNS through the DNS proxy, HTTP through the L7 proxy",
    policies: [cnp('l7-visibility', { endpointSelector: { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'default' } }, egress: [{ toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] }, { toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'default' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }, { port: '8080', protocol: 'TCP' }], rules: { http: [{}] } }] }] })],
    pod: 'xwing',
    enforced: [false, true],
    entries: ['in allow ANY ANY', 'eg allow ANY 53/ANY proxy', 'eg allow deathstar 80/TCP proxy', 'eg allow deathstar 8080/TCP proxy', 'eg allow tiefighter 80/TCP proxy', 'eg allow tiefighter 8080/TCP proxy', 'eg allow xwing 80/TCP proxy', 'eg allow xwing 8080/TCP proxy'],
    check: (r) => {
      expect(r.entries[1]).toMatchObject({ proxyPort: 1, dns: [{ matchPattern: '*' }] });
      expect(r.entries[1].l7).toBeUndefined();
      expect(r.entries[2].l7).toEqual([{}]);
    },
  },
  // Kubernetes NetworkPolicy
  {
    name: 'KNP: podSelector peers and ports',
    policies: [knp('np', { podSelector: { matchLabels: { class: 'deathstar' } }, ingress: [{ from: [{ podSelector: { matchLabels: { org: 'empire' } } }], ports: [{ port: 80 }] }] })],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in allow deathstar 80/TCP', 'in allow tiefighter 80/TCP', 'eg allow ANY ANY'],
  },
  { name: 'KNP: ingress [{}] allows everyone', policies: [knp('np', { podSelector: {}, ingress: [{}] })], pod: 'xwing', enforced: [true, false], entries: ['in allow ANY ANY', 'eg allow ANY ANY'] },
  { name: 'KNP: listed policyTypes without rules deny all', policies: [knp('np', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })], pod: 'xwing', enforced: [true, true], entries: [] },
  {
    name: 'KNP: namespaceSelector by the metadata.name label',
    policies: [knp('np', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }], ports: [{ port: 53, protocol: 'UDP' }] }] })],
    pod: 'xwing',
    enforced: [false, true],
    entries: ['in allow ANY ANY', 'eg allow kubedns 53/UDP'],
  },
  {
    name: 'KNP: ipBlock with except',
    policies: [knp('np', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }] }] })],
    pod: 'xwing',
    enforced: [false, true],
    entries: ['in allow ANY ANY', 'eg allow 10.0.0.0/8 ANY'],
    check: (r) => expect(r.cidrs).toEqual(['10.0.0.0/8', '10.1.0.0/16']),
  },
  {
    name: 'rules from several policies add up',
    policies: [RULE1, cnp('more', { endpointSelector: deathstarSel, ingress: [{ fromEndpoints: [{ matchLabels: { class: 'xwing' } }], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] }] })],
    pod: 'deathstar',
    enforced: [true, false],
    entries: ['in allow deathstar 80/TCP', 'in allow tiefighter 80/TCP', 'in allow xwing 443/TCP', 'eg allow ANY ANY'],
  },
];

describe('resolution', () => {
  it('has at least 30 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(30));

  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { res, shown } = resolveFor(c.policies, c.pod, c.ctx);
    expect([res.ingressEnforced, res.egressEnforced]).toEqual(c.enforced);
    expect(shown).toEqual(c.entries);
    c.check?.(res);
  });
});

describe('repository', () => {
  it('bumps the revision on every change and lists policies with their objects', () => {
    const repo = new PolicyRepository();
    expect(repo.revision).toBe(0);
    expect(repo.add(parsePolicy(RULE1))).toBe(1);
    expect(repo.add(parsePolicy(RULE1_L7))).toBe(2); // same key: replaced
    expect(repo.list()).toHaveLength(1);
    expect(repo.list()[0].original).toEqual(RULE1_L7);
    expect(repo.add(parsePolicy(ccnp('cw', { endpointSelector: {}, ingress: [{}] })))).toBe(3);
    expect(repo.get('CiliumNetworkPolicy', 'default', 'rule1')?.name).toBe('rule1');
    expect(repo.get('CiliumClusterwideNetworkPolicy', undefined, 'cw')?.namespace).toBeUndefined();
    expect(repo.delete('CiliumNetworkPolicy', 'default', 'nope')).toBeUndefined();
    expect(repo.delete('CiliumNetworkPolicy', 'default', 'rule1')).toBe(4);
    expect(repo.deleteAll()).toBe(5);
    expect(repo.list()).toEqual([]);
    expect(repo.selectorCache.selectorCount).toBe(0);
  });

  it('reports the revision a resolution was computed at', () => {
    const { res, repo } = resolveFor([RULE1], 'deathstar');
    expect(res.revision).toBe(1);
    expect(repo.policiesSelecting(PODS.deathstar.labels).map((p) => p.name)).toEqual(['rule1']);
    expect(repo.policiesSelecting(PODS.xwing.labels)).toEqual([]);
  });
});

describe('incremental updates', () => {
  const setup = () => {
    const f = fixture();
    const repo = new PolicyRepository();
    repo.add(parsePolicy(RULE1));
    for (const p of Object.values(PODS)) repo.resolve(p, f.ctx);
    repo.takeStaleEndpoints();
    return { repo, f };
  };

  it('a new identity matching a selector affects only the endpoints that use it', () => {
    const { repo, f } = setup();
    const newfighter = ns({ org: 'empire', class: 'tiefighter', version: 'v2' });
    expect(repo.addIdentity(1010, newfighter)).toEqual([PODS.deathstar.id]);
    expect(repo.takeStaleEndpoints()).toEqual([PODS.deathstar.id]);
    f.ctx.identities.set(1010, newfighter);
    const res = repo.resolve(PODS.deathstar, f.ctx);
    expect(res.entries.filter((e) => !e.egress).map((e) => e.identity)).toEqual([1001, 1002, 1010]);
    expect(repo.addIdentity(1011, ns({ org: 'alliance', class: 'ywing' }))).toEqual([]);
    expect(repo.removeIdentity(1002)).toEqual([PODS.deathstar.id]);
  });

  it('identities learnt from ctx.identities mark other endpoints stale', () => {
    const { repo, f } = setup();
    f.ctx.identities.set(1012, ns({ org: 'empire', class: 'shuttle' }));
    repo.resolve(PODS.xwing, f.ctx);
    expect(repo.takeStaleEndpoints()).toEqual([PODS.deathstar.id]);
    f.ctx.identities.delete(1012);
    repo.resolve(PODS.xwing, f.ctx);
    expect(repo.takeStaleEndpoints()).toEqual([PODS.deathstar.id]);
  });

  it('a policy change marks only the endpoints its rules select, old version or new', () => {
    const { repo } = setup();
    repo.add(parsePolicy(cnp('xw', { endpointSelector: { matchLabels: { class: 'xwing' } }, egress: [{}] })));
    expect(repo.takeStaleEndpoints()).toEqual([PODS.xwing.id]);
    repo.add(parsePolicy(cnp('xw', { endpointSelector: { matchLabels: { class: 'tiefighter' } }, egress: [{}] })));
    expect(repo.takeStaleEndpoints()).toEqual([PODS.tiefighter.id, PODS.xwing.id]);
    repo.delete('CiliumNetworkPolicy', 'default', 'rule1');
    expect(repo.takeStaleEndpoints()).toEqual([PODS.deathstar.id]);
  });

  it('a new CIDR identity inside a policy CIDR affects the endpoints with that CIDR rule', () => {
    const f = fixture();
    const repo = new PolicyRepository();
    repo.add(parsePolicy(cnp('out', { endpointSelector: { matchLabels: { class: 'xwing' } }, egress: [{ toCIDR: ['192.168.0.0/16'] }] })));
    repo.resolve(PODS.xwing, f.ctx);
    repo.resolve(PODS.deathstar, f.ctx);
    expect(repo.addIdentity(16777999, ['cidr:192.168.10.0/24', 'reserved:world'])).toEqual([PODS.xwing.id]);
    repo.forgetEndpoint(PODS.xwing.id);
    expect(repo.addIdentity(16778000, ['cidr:192.168.11.0/24', 'reserved:world'])).toEqual([]);
  });
});
