// toFQDNs: Cilium's matchName/matchPattern semantics, the DNS cache with TTL and tofqdns-min-ttl,
// and the name manager handing each learned IP the selectors that select it.
import { describe, expect, it } from 'vitest';
import { DnsCache, type DnsResponseEvent } from '../../src/fqdn/cache.ts';
import { FqdnManager } from '../../src/fqdn/manager.ts';
import { compileSelector, matchNameError, matchPatternError, selectorText } from '../../src/fqdn/pattern.ts';

const answer = (name: string, ips: string[], ttl = 30, endpointId = 7): DnsResponseEvent => ({ endpointId, sourceIdentity: 1234, name, qtype: 'A', ips, ttl, rcode: 0 });

describe('matchName and matchPattern', () => {
  const matches = (sel: { matchName?: string; matchPattern?: string }, name: string) => compileSelector(selectorText(sel))(selectorText({ matchName: name }));

  it('matchName is exact, case-insensitive, the final dot optional', () => {
    expect(matches({ matchName: 'API.Example.com' }, 'api.example.com.')).toBe(true);
    expect(matches({ matchName: 'api.example.com.' }, 'api.example.com')).toBe(true);
    expect(matches({ matchName: 'api.example.com' }, 'www.api.example.com')).toBe(false);
  });

  it('* matches within one label only', () => {
    expect(matches({ matchPattern: '*.example' }, 'a.example')).toBe(true);
    expect(matches({ matchPattern: '*.example' }, 'a.b.example')).toBe(false);
    expect(matches({ matchPattern: '*.example' }, 'example')).toBe(false);
    expect(matches({ matchPattern: 'api-*.example' }, 'api-v2.example')).toBe(true);
    expect(matches({ matchPattern: 'api-*.example' }, 'web-v2.example')).toBe(false);
  });

  it('a lone * matches every name; a leading **. one or more labels', () => {
    expect(matches({ matchPattern: '*' }, 'anything.at.all')).toBe(true);
    expect(matches({ matchPattern: '**.example' }, 'a.b.example')).toBe(true);
    expect(matches({ matchPattern: '**.example' }, 'example')).toBe(false);
  });

  it('rejects what is not a DNS name or pattern', () => {
    expect(matchNameError('a..b')).toMatch(/empty label/);
    expect(matchNameError('*.a')).toMatch(/not a DNS name/);
    expect(matchNameError('ok.example')).toBeUndefined();
    expect(matchPatternError('a.**.b')).toMatch(/leading label/);
    expect(matchPatternError('a b')).toMatch(/not a DNS pattern/);
    expect(matchPatternError('*.ok.example')).toBeUndefined();
  });
});

describe('DNS cache', () => {
  it('keeps an answer for its TTL, raised to tofqdns-min-ttl', () => {
    let now = 1_000_000;
    const short = new DnsCache(0, () => now);
    const floor = new DnsCache(60, () => now);
    short.observe(answer('a.example', ['192.0.2.1'], 5));
    floor.observe(answer('a.example', ['192.0.2.1'], 5));
    expect(short.list()).toEqual([{ endpointId: 7, source: 'lookup', fqdn: 'a.example.', ttl: 5, expiresAt: now + 5000, ips: ['192.0.2.1'] }]);
    expect(floor.list()[0].ttl).toBe(60);
    now += 5000;
    expect(short.expire()).toEqual(['a.example.']);
    expect(short.list()).toEqual([]);
    expect(floor.expire()).toEqual([]);
    expect(floor.addressesOf('a.example.')).toEqual(new Set(['192.0.2.1']));
  });

  it('learns nothing from an error, an empty answer or IPv6 alone', () => {
    const c = new DnsCache(0);
    expect(c.observe({ ...answer('a.example', ['192.0.2.1']), rcode: 3 })).toEqual([]);
    expect(c.observe(answer('a.example', []))).toEqual([]);
    expect(c.observe(answer('a.example', ['2001:db8::1']))).toEqual([]);
    expect(c.list()).toEqual([]);
  });

  it('a new answer adds addresses; each keeps its own expiry', () => {
    let now = 0;
    const c = new DnsCache(0, () => now);
    expect(c.observe(answer('a.example', ['192.0.2.1'], 10))).toEqual(['a.example.']);
    now = 5000;
    expect(c.observe(answer('a.example', ['192.0.2.2'], 10))).toEqual(['a.example.']);
    expect(c.observe(answer('a.example', ['192.0.2.2'], 10))).toEqual([]);
    now = 10_000;
    c.expire();
    expect(c.addressesOf('a.example.')).toEqual(new Set(['192.0.2.2']));
  });

  it('clean forgets one endpoint or all', () => {
    const c = new DnsCache(0);
    c.observe(answer('a.example', ['192.0.2.1'], 30, 1));
    c.observe(answer('b.example', ['192.0.2.2'], 30, 2));
    expect(c.clean(1)).toEqual(['a.example.']);
    expect(c.list().map((r) => r.endpointId)).toEqual([2]);
    c.clean();
    expect(c.list()).toEqual([]);
  });
});

describe('name manager', () => {
  const setup = () => {
    let now = 0;
    const applied: Array<Map<string, string[]>> = [];
    const m = new FqdnManager({ minTtl: 0, apply: (c) => applied.push(new Map(c)), now: () => now });
    return { m, applied, advance: (ms: number) => (now += ms) };
  };

  it('an answer for a selected name labels its IPs; other names teach nothing', () => {
    const { m, applied } = setup();
    m.setSelectors(['allowed.example.', '*.wild.example.']);
    m.observe(answer('other.example', ['192.0.2.9']));
    expect(applied).toEqual([]);
    m.observe(answer('allowed.example', ['192.0.2.1']));
    m.observe(answer('x.wild.example', ['192.0.2.1', '192.0.2.2']));
    expect(applied).toEqual([new Map([['192.0.2.1', ['allowed.example.']]]), new Map([['192.0.2.1', ['*.wild.example.', 'allowed.example.']], ['192.0.2.2', ['*.wild.example.']]])]);
    m.close();
  });

  it('a selector added later selects names already cached; removed, it lets them go', () => {
    const { m, applied } = setup();
    m.observe(answer('allowed.example', ['192.0.2.1']));
    m.setSelectors(['allowed.example.']);
    m.setSelectors([]);
    expect(applied).toEqual([new Map([['192.0.2.1', ['allowed.example.']]]), new Map([['192.0.2.1', []]])]);
    m.close();
  });

  it('expiry takes the IP away from the selector', () => {
    const { m, applied, advance } = setup();
    m.setSelectors(['allowed.example.']);
    m.observe(answer('allowed.example', ['192.0.2.1'], 2));
    advance(1999);
    m.expire();
    expect(m.selectorsOf('192.0.2.1')).toEqual(['allowed.example.']);
    advance(1);
    m.expire();
    expect(m.selectorsOf('192.0.2.1')).toEqual([]);
    expect(applied.at(-1)).toEqual(new Map([['192.0.2.1', []]]));
    m.close();
  });
});
