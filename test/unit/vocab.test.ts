// The shared vocabularies and the monitor ring's two kinds of listeners: a policy verdict written by the
// datapath reads the same in `monitor -v` and in Hubble, and no text is made while only Hubble listens.
process.env.TZ = 'UTC';
import { describe, it, expect, vi } from 'vitest';
import type { MonitorEvent } from '../../src/control/types.ts';
import { PacketContext } from '../../src/dataplane/context.ts';
import { DROP_POLICY, DROP_UNKNOWN_L3, DROP_UNUSED1, DROP_UNUSED2, dropReasonEnum, dropReasonText } from '../../src/dataplane/drop-reasons.ts';
import { formatEvent } from '../../src/dataplane/event-format.ts';
import { MonitorRing, TRACE_TO_LXC, type RawEvent } from '../../src/dataplane/events.ts';
import { POLICY_MATCH_L3_ONLY } from '../../src/dataplane/vocab/policy-match.ts';
import { identityName, reservedIdentityByName, reservedLabel } from '../../src/dataplane/vocab/reserved-identities.ts';
import { tcpFlagsInBitOrder, tcpFlagsInSummaryOrder, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../src/dataplane/vocab/tcp-flags.ts';
import { buildFlow, type EndpointResolver } from '../../src/observe/hubble/builder.ts';
import { compactLine } from '../../src/observe/hubble/printer.ts';
import { cidrContains, formatIPv4, parseCidr, parseIPv4, tryParseCidr } from '../../src/wire/ip-text.ts';

vi.mock('../../src/dataplane/event-format.ts', async (original) => {
  const m = await original<typeof import('../../src/dataplane/event-format.ts')>();
  return { ...m, formatEvent: vi.fn(m.formatEvent) };
});

const CLIENT = [10, 0, 0, 11];
const SERVER = [10, 0, 0, 12];

/** A context holding a TCP SYN 10.0.0.11:40000 → 10.0.0.12:80, as a pod's packet reaches policy. */
function synContext(): PacketContext {
  const ctx = new PacketContext();
  const frame = new Uint8Array(10 + 40);
  const ip = frame.subarray(10);
  ip.set([0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, ...CLIENT, ...SERVER]);
  ip.set([40000 >> 8, 40000 & 255, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, TCP_SYN], 20);
  ctx.buf = frame;
  ctx.off = 0;
  ctx.len = frame.length;
  ctx.l3 = 10;
  ctx.srcEp = 11;
  ctx.dstEp = 12;
  return ctx;
}

const resolver: EndpointResolver = {
  resolve: (ip) => (ip === '10.0.0.12'
    ? { ID: 12, identity: 1003, namespace: 'default', labels: ['k8s:class=deathstar'], pod_name: 'deathstar' }
    : { ID: 11, identity: 1002, namespace: 'default', labels: ['k8s:class=tiefighter'], pod_name: 'tiefighter' }),
};

const nextTick = () => new Promise((r) => setImmediate(r));

describe('monitor ring listeners', () => {
  it('an L3-only allow reads L3-Only in monitor -v and in Hubble', async () => {
    const ring = new MonitorRing(8);
    const raw: RawEvent[] = [];
    const text: MonitorEvent[] = [];
    const offRaw = ring.subscribeRaw((e) => raw.push(e));
    const offText = ring.subscribe((e) => text.push(e));
    ring.emitVerdict(synContext(), false, POLICY_MATCH_L3_ONLY, 0, 12, 1002);
    await nextTick();
    offRaw();
    offText();
    expect(text).toHaveLength(1);
    expect(text[0].verbose).toMatch(/^Policy verdict log: flow 0x[0-9a-f]+ local EP ID 12, remote ID 1002, proto 6, ingress, action allow, auth: disabled, match L3-Only, 10\.0\.0\.11:40000 -> 10\.0\.0\.12:80 tcp SYN$/);
    const f = buildFlow(raw[0], resolver, 'n1')!;
    expect(f.policy_match_type).toBe(1);
    expect(compactLine(f)).toMatch(/: default\/tiefighter:40000 \(ID:1002\) -> default\/deathstar:80 \(ID:1003\) policy-verdict:L3-Only INGRESS ALLOWED \(TCP Flags: SYN\)$/);
  });

  it('makes no text while only raw listeners are there; one text per event for any number of text listeners', async () => {
    const format = vi.mocked(formatEvent);
    format.mockClear();
    const ring = new MonitorRing(8);
    const raw: RawEvent[] = [];
    const offRaw = ring.subscribeRaw((e) => raw.push(e));
    ring.emit(synContext(), 4, TRACE_TO_LXC);
    await nextTick();
    expect(raw).toHaveLength(1);
    expect(raw[0]).toMatchObject({ type: 4, sub: TRACE_TO_LXC, srcEp: 11, dstEp: 12, packet: { src: '10.0.0.11', dst: '10.0.0.12', sport: 40000, dport: 80, tcpFlags: TCP_SYN } });
    expect(format).not.toHaveBeenCalled();
    const lines: string[] = [];
    const offA = ring.subscribe((e) => lines.push(`a ${e.summary}`));
    const offB = ring.subscribe((e) => lines.push(`b ${e.summary}`));
    ring.emit(synContext(), 4, TRACE_TO_LXC);
    await nextTick();
    expect(format).toHaveBeenCalledTimes(1);
    expect(lines.map((l) => l.replace(/flow 0x[0-9a-f]+/, 'flow X'))).toEqual([
      'a -> endpoint 12 flow X , identity unknown->unknown state new ifindex 0 orig-ip 0.0.0.0: 10.0.0.11:40000 -> 10.0.0.12:80 tcp SYN',
      'b -> endpoint 12 flow X , identity unknown->unknown state new ifindex 0 orig-ip 0.0.0.0: 10.0.0.11:40000 -> 10.0.0.12:80 tcp SYN',
    ]);
    offA();
    offB();
    ring.emit(synContext(), 4, TRACE_TO_LXC);
    await nextTick();
    expect(format).toHaveBeenCalledTimes(1);
    expect(raw).toHaveLength(3);
    offRaw();
  });

  it('an L7 access-log record becomes the monitor l7 line only for text listeners', () => {
    const ring = new MonitorRing(8);
    const lines: string[] = [];
    const off = ring.subscribe((e) => lines.push(e.summary));
    const record = { type: 'request' as const, verdict: 'Denied' as const, method: 'PUT', url: 'http://deathstar/v1/exhaust-port', protocol: 'HTTP/1.1', status: 403, client: { ip: '10.0.0.11', port: 40000 }, server: { ip: '10.0.0.12', port: 80 }, endpoint: 12, proxyPort: 10001 };
    ring.publishAccessLog(record, { id: 0, identity: 1002, labels: ['k8s:org=empire'] }, { id: 12, identity: 1003, labels: ['k8s:class=deathstar'] });
    off();
    expect(lines).toEqual(['<- Request http from 0 ([k8s:org=empire]) to 12 ([k8s:class=deathstar]), identity 1002->1003, verdict Denied PUT http://deathstar/v1/exhaust-port => 403']);
  });
});

describe('vocabularies', () => {
  it('drop reasons: Cilium\'s names, texts and Hubble enum from one table', () => {
    expect([DROP_POLICY, dropReasonText(DROP_POLICY), dropReasonEnum(DROP_POLICY)]).toEqual([133, 'Policy denied', 'POLICY_DENIED']);
    expect([DROP_UNUSED1, DROP_UNUSED2, dropReasonText(130), dropReasonEnum(131)]).toEqual([130, 131, 'Invalid source mac', 'INVALID_DESTINATION_MAC']);
    expect([dropReasonText(DROP_UNKNOWN_L3), dropReasonEnum(DROP_UNKNOWN_L3)]).toEqual(['Unsupported L3 protocol', 'UNSUPPORTED_L3_PROTOCOL']);
    expect([dropReasonText(158), dropReasonText(0), dropReasonText(99), dropReasonEnum(99)]).toEqual(['Service backend not found', 'Success', 'Unknown drop reason (99)', undefined]);
    expect(formatEvent({ type: 1, sub: 181, ctState: 0, direction: 2, srcEp: 1, dstEp: 0, srcIdentity: 1, dstIdentity: 2, ifindex: 3, origLen: 0, reason: 0, match: 0, time: 0, data: new Uint8Array(0) }).summary)
      .toBe('xx drop (Policy denied by denylist) flow 0x811c9dc5 to endpoint 0, ifindex 3, file bpf_lxc.c, , identity host->world: unknown packet (0 bytes)');
  });

  it('reserved identities: names, numbers and labels', () => {
    expect([identityName(1), identityName(6), identityName(42), reservedIdentityByName('kube-apiserver'), reservedLabel(2), reservedLabel(0)])
      .toEqual(['host', 'remote-node', '42', 7, 'reserved:world', undefined]);
  });

  it('TCP flags in bit order (flow JSON) and summary order', () => {
    const f = TCP_FIN | TCP_SYN | TCP_RST | TCP_ACK;
    expect(tcpFlagsInBitOrder(f)).toEqual(['FIN', 'SYN', 'RST', 'ACK']);
    expect(tcpFlagsInSummaryOrder(f)).toEqual(['SYN', 'ACK', 'RST', 'FIN']);
  });
});

describe('IPv4 and CIDR text', () => {
  it('parses and formats addresses with a clear error', () => {
    expect(parseIPv4('172.20.0.1')).toBe(0xac140001);
    expect(formatIPv4(0xac140001)).toBe('172.20.0.1');
    for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', 'a.b.c.d', '1.2.3.4 ']) expect(() => parseIPv4(bad)).toThrow(`invalid IPv4 address "${bad}"`);
  });

  it('parses CIDRs: network with host bits cleared, the address as written, containment', () => {
    expect(parseCidr('10.96.1.7/16')).toEqual({ base: 0x0a600000, bits: 16, size: 65536, ip: 0x0a600107 });
    expect(parseCidr('0.0.0.0/0')).toMatchObject({ base: 0, bits: 0, size: 2 ** 32 });
    expect(() => parseCidr('10.0.0.0/33')).toThrow('invalid CIDR "10.0.0.0/33"');
    expect(tryParseCidr('10.0.0.1')).toBeUndefined();
    expect(tryParseCidr('10.0.0.1', { bareAddress: true })).toMatchObject({ base: 0x0a000001, bits: 32 });
    const c = parseCidr('172.20.0.0/24');
    expect([cidrContains(c, parseIPv4('172.20.0.255')), cidrContains(c, parseIPv4('172.20.1.0'))]).toEqual([true, false]);
  });
});
