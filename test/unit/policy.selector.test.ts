import { describe, expect, it } from 'vitest';
import { securityLabels } from '../../src/identity/labels.ts';
import {
  CidrSelector,
  ClusterSelector,
  EndpointSelector,
  LabelIdentitySelector,
  labelMatches,
  parseLabel,
  reservedIdentityLabels,
  scopePeer,
  scopeSubject,
  SelectorCache,
} from '../../src/policy/index.ts';

const deathstar = securityLabels({ org: 'empire', class: 'deathstar' }, 'default', 'default');
const xwing = securityLabels({ org: 'alliance', class: 'xwing' }, 'default', 'default');
const dns = securityLabels({ 'k8s-app': 'kube-dns' }, 'kube-system', 'default', 'coredns');

describe('labels', () => {
  it('parses source, key and value', () => {
    expect(parseLabel('k8s:app=web')).toEqual({ source: 'k8s', key: 'app', value: 'web' });
    expect(parseLabel('any:app')).toEqual({ source: 'any', key: 'app', value: '' });
    expect(parseLabel('reserved:host')).toEqual({ source: 'reserved', key: 'host', value: '' });
    expect(parseLabel('app=web')).toEqual({ source: 'any', key: 'app', value: 'web' });
    expect(parseLabel('k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default')).toEqual({
      source: 'k8s',
      key: 'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name',
      value: 'default',
    });
    expect(parseLabel('cidr:10.0.0.0/8')).toEqual({ source: 'cidr', key: '10.0.0.0/8', value: '' });
  });

  it('source any matches every source; a named source only itself', () => {
    expect(labelMatches(parseLabel('any:app=web'), parseLabel('k8s:app=web'))).toBe(true);
    expect(labelMatches(parseLabel('app=web'), parseLabel('container:app=web'))).toBe(true);
    expect(labelMatches(parseLabel('k8s:app=web'), parseLabel('container:app=web'))).toBe(false);
    expect(labelMatches(parseLabel('k8s:app=web'), parseLabel('k8s:app=db'))).toBe(false);
  });
});

describe('EndpointSelector', () => {
  it('the empty selector selects everything', () => {
    const s = EndpointSelector.fromSpec({});
    expect(s.isWildcard()).toBe(true);
    expect(s.matches(deathstar)).toBe(true);
    expect(s.matches(['reserved:world'])).toBe(true);
  });

  it('matchLabels with sources', () => {
    expect(EndpointSelector.fromSpec({ matchLabels: { org: 'empire' } }).matches(deathstar)).toBe(true);
    expect(EndpointSelector.fromSpec({ matchLabels: { 'k8s:org': 'empire' } }).matches(deathstar)).toBe(true);
    expect(EndpointSelector.fromSpec({ matchLabels: { 'any:org': 'empire', class: 'deathstar' } }).matches(deathstar)).toBe(true);
    expect(EndpointSelector.fromSpec({ matchLabels: { 'container:org': 'empire' } }).matches(deathstar)).toBe(false);
    expect(EndpointSelector.fromSpec({ matchLabels: { org: 'empire' } }).matches(xwing)).toBe(false);
    expect(EndpointSelector.fromSpec({ matchLabels: { 'reserved:host': '' } }).matches(['reserved:host'])).toBe(true);
    expect(EndpointSelector.fromSpec({ matchLabels: { 'reserved:host': '' } }).matches(['k8s:host'])).toBe(false);
    // KNP selectors default to the k8s source
    expect(EndpointSelector.fromSpec({ matchLabels: { org: 'empire' } }, 'k8s').toString()).toBe('k8s:org In (empire)');
  });

  it('matchExpressions In, NotIn, Exists, DoesNotExist', () => {
    const m = (key: string, operator: string, values?: string[]) => EndpointSelector.fromSpec({ matchExpressions: [{ key, operator, values }] });
    expect(m('org', 'In', ['empire', 'rebels']).matches(deathstar)).toBe(true);
    expect(m('org', 'In', ['rebels']).matches(deathstar)).toBe(false);
    expect(m('org', 'NotIn', ['alliance']).matches(deathstar)).toBe(true);
    expect(m('org', 'NotIn', ['alliance']).matches(xwing)).toBe(false);
    expect(m('missing', 'NotIn', ['x']).matches(xwing)).toBe(true);
    expect(m('class', 'Exists').matches(xwing)).toBe(true);
    expect(m('k8s:class', 'Exists').matches(xwing)).toBe(true);
    expect(m('reserved:class', 'Exists').matches(xwing)).toBe(false);
    expect(m('class', 'DoesNotExist').matches(xwing)).toBe(false);
    expect(m('k8s-app', 'DoesNotExist').matches(xwing)).toBe(true);
    expect(() => m('org', 'Like', ['x'])).toThrow(/unknown selector operator/);
  });

  it('equal selectors share one canonical key', () => {
    const a = EndpointSelector.fromSpec({ matchLabels: { b: '2', a: '1' } });
    const b = EndpointSelector.fromSpec({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }], matchLabels: { b: '2' } });
    expect(a.key).toBe(b.key);
  });
});

describe('namespace scoping', () => {
  const org = EndpointSelector.fromSpec({ matchLabels: { org: 'empire' } });

  it('a namespaced policy injects its namespace into peers unless they name one', () => {
    const s = scopePeer(org, 'default');
    expect(s.matches(deathstar)).toBe(true);
    expect(s.matches(securityLabels({ org: 'empire' }, 'other', 'default'))).toBe(false);
    const named = EndpointSelector.fromSpec({ matchLabels: { 'io.kubernetes.pod.namespace': 'kube-system' } });
    expect(scopePeer(named, 'default')).toBe(named);
    expect(scopePeer(named, 'default').matches(dns)).toBe(true);
    // {} in a namespaced policy: every pod of that namespace, and nothing reserved
    const all = scopePeer(EndpointSelector.fromSpec({}), 'default');
    expect(all.matches(xwing)).toBe(true);
    expect(all.matches(dns)).toBe(false);
    expect(all.matches(['reserved:host'])).toBe(false);
  });

  it('a clusterwide policy injects no namespace, only that the peer is a pod', () => {
    const s = scopePeer(org, undefined);
    expect(s.matches(securityLabels({ org: 'empire' }, 'other', 'default'))).toBe(true);
    const all = scopePeer(EndpointSelector.fromSpec({}), undefined);
    expect(all.matches(dns)).toBe(true);
    expect(all.matches(['reserved:world'])).toBe(false);
    expect(scopeSubject(org, undefined).selector).toBe(org);
  });

  it('the subject always lives in the policy namespace', () => {
    const { selector, overridden } = scopeSubject(EndpointSelector.fromSpec({ matchLabels: { 'io.kubernetes.pod.namespace': 'kube-system', 'k8s-app': 'kube-dns' } }), 'default');
    expect(overridden).toBe('kube-system');
    expect(selector.matches(dns)).toBe(false);
    expect(scopeSubject(org, 'default').overridden).toBeUndefined();
  });
});

describe('SelectorCache', () => {
  const empire = new LabelIdentitySelector(scopePeer(EndpointSelector.fromSpec({ matchLabels: { org: 'empire' } }), 'default'));
  const build = () => {
    const c = new SelectorCache();
    for (const [id, l] of reservedIdentityLabels()) c.addIdentity(id, l);
    c.addIdentity(1001, deathstar);
    c.addIdentity(1003, xwing);
    c.addIdentity(16777217, ['cidr:10.1.0.0/16', 'reserved:world']);
    c.addIdentity(16777218, ['cidr:10.96.0.0/12']); // world label added implicitly
    return c;
  };

  it('computes a selector set on register and keeps it current', () => {
    const c = build();
    expect([...c.register(empire)]).toEqual([1001]);
    expect(c.addIdentity(1002, securityLabels({ org: 'empire', class: 'tiefighter' }, 'default', 'default'))).toEqual([empire.key]);
    expect([...c.selections(empire.key)].sort()).toEqual([1001, 1002]);
    expect(c.addIdentity(1004, xwing)).toEqual([]);
    expect(c.addIdentity(1002, securityLabels({ org: 'empire', class: 'tiefighter' }, 'default', 'default'))).toEqual([]);
    expect(c.removeIdentity(1002)).toEqual([empire.key]);
    expect(c.removeIdentity(1004)).toEqual([]);
    c.register(empire);
    c.unregister(empire.key);
    expect(c.selectorCount).toBe(1);
    c.unregister(empire.key);
    expect(c.selectorCount).toBe(0);
  });

  it('cluster excludes world and CIDR identities', () => {
    const c = build();
    expect([...c.register(new ClusterSelector())].sort((a, b) => a - b)).toEqual([1, 3, 4, 5, 6, 7, 8, 1001, 1003]);
  });

  it('world selects identity 2 and every CIDR identity', () => {
    const c = build();
    const world = new LabelIdentitySelector(new EndpointSelector([{ source: 'reserved', key: 'world', op: 'Exists', values: [] }]));
    expect([...c.register(world)].sort((a, b) => a - b)).toEqual([2, 16777217, 16777218]);
  });

  it('a CIDR selects CIDR identities inside it and outside its excepts', () => {
    const c = build();
    expect([...c.register(new CidrSelector('10.0.0.0/8', []))].sort()).toEqual([16777217, 16777218]);
    expect([...c.register(new CidrSelector('10.0.0.0/8', ['10.96.0.0/12']))]).toEqual([16777217]);
    expect([...c.register(new CidrSelector('10.1.2.0/24', []))]).toEqual([]);
    expect([...c.register(new CidrSelector('0.0.0.0/0', []))].sort()).toEqual([16777217, 16777218, 2]);
    expect(c.addIdentity(16777219, ['cidr:10.2.0.0/16'])).toContain('cidr:10.0.0.0/8 except 10.96.0.0/12');
  });
});
