// `ciliary trace` on crafted packets through a Datapath without devices: the exact steps of a
// pod-to-pod SYN, a spoofed source, a service DNAT (and its reply), a policy drop; filters, counts,
// one session at a time, and the tracer leaving untraced packets alone.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/native/index.ts';
import { injectPacket, plumbPod, tcpPacket } from '../helpers/datapath.ts';
import { MapRegistry } from '../../src/maps/index.ts';
import { Datapath } from '../../src/dataplane/datapath.ts';
import * as L from '../../src/maps/cilium/lb.ts';
import { startTraceSession, traceFilter } from '../../src/observe/trace/session.ts';
import { ANY_FILTER, type TraceFilter } from '../../src/observe/trace/tracer.ts';
import type { PacketTraceRecord, TraceEndReason } from '../../src/observe/trace/types.ts';
import { ApiError } from '../../src/control/types.ts';
import { formatTraceBlock, traceQuery } from '../../src/cli/trace.ts';
import { parseArgs } from '../../src/cli/args.ts';

const A = 10;
const B = 20;
const IP_A = 0x0a000001; // 10.0.0.1
const IP_B = 0x0a000002; // 10.0.0.2
const SVC = 0x0a600005; // 10.96.0.5

describe('packet tracer', () => {
  let dir: string;
  let dp: Datapath;
  let devNull: number;
  let traces: PacketTraceRecord[];
  let ended: TraceEndReason[];
  let stop: (() => void) | undefined;

  const inject = (pkt: Uint8Array, from: number) => injectPacket(dp, pkt, from);
  const names: Record<number, string> = { [A]: 'default/a', [B]: 'default/b' };
  const trace = (f: Partial<TraceFilter> = {}) => {
    stop = startTraceSession(dp, { ...ANY_FILTER, ...f }, { packet: (t) => traces.push(t), end: (r) => ended.push(r) }, {
      timeoutMs: 0, format: { describeEndpoint: (id) => names[id] },
    });
  };
  /** Formats what was recorded so far (the session does it on a setImmediate). */
  const flush = () => dp.tracer?.drain();
  const addService = () => {
    const key = new Uint8Array(L.SVC_KEY_SIZE);
    const kv = new DataView(key.buffer);
    const val = new Uint8Array(L.SVC_VALUE_SIZE);
    const vv = new DataView(val.buffer);
    kv.setUint32(L.SK_ADDRESS, SVC);
    kv.setUint16(L.SK_DPORT, 80);
    key[L.SK_PROTO] = 6;
    vv.setUint16(L.SV_COUNT, 1, true);
    vv.setUint16(L.SV_REV_NAT, 3, true);
    expect(dp.lb.services.update(key, 0, val, 0, 0)).toBe(0);
    kv.setUint16(L.SK_SLOT, 1, true);
    val.fill(0);
    vv.setUint32(L.SV_BACKEND_ID, 7, true);
    expect(dp.lb.services.update(key, 0, val, 0, 0)).toBe(0);
    const id = new Uint8Array(4);
    new DataView(id.buffer).setUint32(0, 7, true);
    const be = new Uint8Array(L.BACKEND_VALUE_SIZE);
    new DataView(be.buffer).setUint32(L.BE_ADDRESS, IP_B);
    new DataView(be.buffer).setUint16(L.BE_PORT, 8080);
    be[L.BE_PROTO] = 6;
    expect(dp.lb.backends.update(id, 0, be, 0, 0)).toBe(0);
    new DataView(id.buffer).setUint32(0, 3, true);
    const rn = new Uint8Array(L.REVNAT_VALUE_SIZE);
    new DataView(rn.buffer).setUint32(L.RN_ADDRESS, SVC);
    new DataView(rn.buffer).setUint16(L.RN_PORT, 80);
    expect(dp.lb.revNatMap.update(id, 0, rn, 0, 0)).toBe(0);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-trace-'));
    dp = new Datapath(new MapRegistry(dir, native.mapFile));
    devNull = openSync('/dev/null', 'w');
    traces = [];
    ended = [];
    stop = undefined;
    for (const [id, ip] of [[A, IP_A], [B, IP_B]]) expect(plumbPod(dp, id, ip, devNull)).toBe(0);
  });
  afterEach(() => {
    stop?.();
    closeSync(devNull);
    rmSync(dir, { recursive: true, force: true });
  });

  it('pod → pod TCP SYN: hook, every tail call, CT miss and inserts, TTL, delivery', () => {
    trace({ podEp: A, podIp: IP_A });
    inject(tcpPacket(IP_A, IP_B, 40000, 80), A);
    flush();
    expect(traces).toHaveLength(1);
    const t = traces[0];
    expect(t.header).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z from endpoint 10 \(default\/a\) 10\.0\.0\.1:40000 -> 10\.0\.0\.2:80 TCP SYN length 40$/);
    expect(t.steps).toEqual([
      'cil_from_container (endpoint 10 (default/a))',
      'CILIUM_CALL_IPV4_FROM_LXC tail_handle_ipv4 (cilium_calls_00010[7], tail call 1)',
      'cilium_lb4_services_v2 lookup 10.0.0.2:80/TCP → miss',
      'CILIUM_CALL_IPV4_CT_EGRESS tail_ipv4_ct_egress (cilium_calls_00010[30], tail call 2)',
      'cilium_ct4_global lookup TCP OUT 10.0.0.1:40000 -> 10.0.0.2:80 → miss (new)',
      'CILIUM_CALL_IPV4_FROM_LXC_CONT handle_ipv4_from_lxc (cilium_calls_00010[26], tail call 3)',
      'cilium_ipcache lookup 10.0.0.2/32 → miss (identity world)',
      'cilium_ct4_global insert TCP OUT 10.0.0.1:40000 -> 10.0.0.2:80 rev_nat=0 → inserted',
      'cilium_lxc lookup 10.0.0.2 → hit id=20',
      'TTL 64 → 63',
      'CILIUM_CALL_IPV4_TO_ENDPOINT tail_ipv4_to_endpoint (cilium_calls_00020[13], tail call 4)',
      'cilium_ct4_global lookup TCP IN 10.0.0.1:40000 -> 10.0.0.2:80 → miss (new)',
      'cilium_ct4_global insert TCP IN 10.0.0.1:40000 -> 10.0.0.2:80 rev_nat=0 → inserted',
      'event trace to-endpoint',
    ]);
    expect(t.verdict).toBe(`→ redirect fd=${devNull} (to-endpoint 20 default/b)`);
    expect(formatTraceBlock(t).split('\n')[1]).toBe('    cil_from_container (endpoint 10 (default/a))');
  });

  it('spoofed source: dropped in tail_handle_ipv4 with 132', () => {
    trace({ srcIp: 0x0a0000ff });
    inject(tcpPacket(0x0a0000ff, IP_B, 40000, 80), A);
    flush();
    expect(traces).toHaveLength(1);
    expect(traces[0].steps).toEqual([
      'cil_from_container (endpoint 10 (default/a))',
      'CILIUM_CALL_IPV4_FROM_LXC tail_handle_ipv4 (cilium_calls_00010[7], tail call 1)',
      'event drop (Invalid source ip)',
    ]);
    expect(traces[0].verdict).toBe('✗ drop 132 Invalid source ip');
  });

  it('service: frontend hit, backend selection, service CT entry, DNAT; the reply is translated back', () => {
    addService();
    trace({ proto: 6, port: 40000 });
    inject(tcpPacket(IP_A, SVC, 40000, 80), A);
    flush();
    expect(traces[0].header).toContain('10.0.0.1:40000 -> 10.96.0.5:80 TCP SYN');
    expect(traces[0].steps).toEqual([
      'cil_from_container (endpoint 10 (default/a))',
      'CILIUM_CALL_IPV4_FROM_LXC tail_handle_ipv4 (cilium_calls_00010[7], tail call 1)',
      'cilium_lb4_services_v2 lookup 10.96.0.5:80/TCP → hit rev_nat=3 backends=1',
      'cilium_ct4_global lookup TCP SERVICE 10.0.0.1:40000 -> 10.96.0.5:80 → miss',
      'select backend: random slot 1 → id=7',
      'cilium_lb4_backends_v3 lookup id=7 → hit 10.0.0.2:8080',
      'cilium_ct4_global insert TCP SERVICE 10.0.0.1:40000 -> 10.96.0.5:80 backend=7 rev_nat=3 → inserted',
      'event trace-sock pre-xlate-fwd',
      'DNAT 10.96.0.5:80 → 10.0.0.2:8080',
      'event trace-sock post-xlate-fwd',
      'CILIUM_CALL_IPV4_CT_EGRESS tail_ipv4_ct_egress (cilium_calls_00010[30], tail call 2)',
      'cilium_ct4_global lookup TCP OUT 10.0.0.1:40000 -> 10.0.0.2:8080 → miss (new)',
      'CILIUM_CALL_IPV4_FROM_LXC_CONT handle_ipv4_from_lxc (cilium_calls_00010[26], tail call 3)',
      'cilium_ipcache lookup 10.0.0.2/32 → miss (identity world)',
      'cilium_ct4_global insert TCP OUT 10.0.0.1:40000 -> 10.0.0.2:8080 rev_nat=3 → inserted',
      'cilium_lxc lookup 10.0.0.2 → hit id=20',
      'TTL 64 → 63',
      'CILIUM_CALL_IPV4_TO_ENDPOINT tail_ipv4_to_endpoint (cilium_calls_00020[13], tail call 4)',
      'cilium_ct4_global lookup TCP IN 10.0.0.1:40000 -> 10.0.0.2:8080 → miss (new)',
      'cilium_ct4_global insert TCP IN 10.0.0.1:40000 -> 10.0.0.2:8080 rev_nat=0 → inserted',
      'event trace to-endpoint',
    ]);
    expect(traces[0].verdict).toMatch(/^→ redirect fd=\d+ \(to-endpoint 20 default\/b\)$/);

    // The SYN-ACK: the OUT entry answers with its rev-NAT index, the source goes back to the frontend.
    inject(tcpPacket(IP_B, IP_A, 8080, 40000, 0x12), B);
    flush();
    expect(traces).toHaveLength(2);
    const reply = traces[1].steps;
    expect(reply.slice(0, 6)).toEqual([
      'cil_from_container (endpoint 20 (default/b))',
      'CILIUM_CALL_IPV4_FROM_LXC tail_handle_ipv4 (cilium_calls_00020[7], tail call 1)',
      'cilium_lb4_services_v2 lookup 10.0.0.1:40000/TCP → miss',
      'CILIUM_CALL_IPV4_CT_EGRESS tail_ipv4_ct_egress (cilium_calls_00020[30], tail call 2)',
      'cilium_ct4_global lookup TCP OUT 10.0.0.2:8080 -> 10.0.0.1:40000 → hit reply (OUT entry) rev_nat=3',
      'event trace-sock pre-xlate-rev',
    ]);
    expect(reply).toContain('cilium_lb4_reverse_nat lookup 3 → hit 10.96.0.5:80');
    expect(reply).toContain('SNAT 10.0.0.2:8080 → 10.96.0.5:80');
    expect(traces[1].verdict).toMatch(/^→ redirect fd=\d+ \(to-endpoint 10 default\/a\)$/);
  });

  it('policy drop: the four lookups in the destination\'s policy map, the verdict event, drop 133', () => {
    dp.installPolicyMap(B, 64); // empty: nothing is allowed
    trace({ dstIp: IP_B });
    inject(tcpPacket(IP_A, IP_B, 40000, 80), A);
    flush();
    const steps = traces[0].steps;
    expect(steps).toContain('cilium_policy_20 lookup (id=310, ingress, TCP, 80) → miss no allow: Policy denied [L3+L4 miss, L3+any-proto miss, L4-only miss, any miss]');
    expect(steps.slice(-3)).toEqual([
      'cilium_policy_20 lookup (id=310, ingress, TCP, 80) → miss no allow: Policy denied [L3+L4 miss, L3+any-proto miss, L4-only miss, any miss]',
      'event policy-verdict ingress',
      'event drop (Policy denied)',
    ]);
    expect(steps[steps.length - 4]).toBe('cilium_ct4_global lookup TCP IN 10.0.0.1:40000 -> 10.0.0.2:80 → miss (new)');
    expect(traces[0].verdict).toBe('✗ drop 133 Policy denied');
  });

  it('traces only matching packets, stops after --count, one session at a time', async () => {
    trace({ proto: 17, count: 2 });
    expect(() => trace()).toThrow(ApiError);
    inject(tcpPacket(IP_A, IP_B, 40000, 80), A); // TCP: not traced
    expect(dp.tracer!.n).toBe(0);
    expect(dp.totals().forwards).toBe(2); // egress at A, ingress at B
    const udp = tcpPacket(IP_A, IP_B, 5000, 53);
    udp[19] = 17;
    new DataView(udp.buffer).setUint16(10 + 24, 20); // UDP length
    native.setChecksums(udp, 10, udp.length);
    for (let i = 0; i < 3; i++) inject(udp, A);
    await new Promise((r) => setTimeout(r, 20));
    expect(traces).toHaveLength(2);
    expect(traces[0].header).toContain('10.0.0.1:5000 -> 10.0.0.2:53 UDP');
    expect(ended).toEqual(['count']);
    expect(dp.tracer).toBeNull(); // removed: the next trace may start
    trace();
    expect(dp.tracer).not.toBeNull();
  });

  it('a stopped session removes the tracer; untraced packets leave ctx.traced false', () => {
    trace({ ip: 0x01020304 });
    inject(tcpPacket(IP_A, IP_B, 40000, 80), A);
    expect(dp.ctx.traced).toBe(false);
    stop!();
    expect(dp.tracer).toBeNull();
    expect(dp.ct.tracer).toBeNull();
    expect(ended).toEqual(['stopped']);
  });

  it('validates requests into filters', () => {
    const pod = (ns: string, name: string) => (ns === 'default' && name === 'a' ? { endpointID: A, podIP: '10.0.0.1' } as never : undefined);
    const { filter, timeoutMs } = traceFilter({ pod: 'a', proto: 'TCP', port: '80', count: '3', timeout: '2.5', dstIp: '10.0.0.2' }, pod);
    expect(filter).toMatchObject({ podEp: A, podIp: IP_A, proto: 6, port: 80, count: 3, dstIp: IP_B, srcIp: -1, ip: -1 });
    expect(timeoutMs).toBe(2500);
    expect(traceFilter({}, pod).filter.count).toBe(10);
    expect(() => traceFilter({ pod: 'nope' }, pod)).toThrow(/not found/);
    expect(() => traceFilter({ proto: 'sctp' }, pod)).toThrow(/tcp, udp or icmp/);
    expect(() => traceFilter({ ip: '1.2.3' }, pod)).toThrow(/invalid IPv4/);
    expect(() => traceFilter({ port: '70000' }, pod)).toThrow(/port/);
  });

  it('CLI: flags become the /v1/trace query', () => {
    const q = traceQuery(parseArgs(['--pod', 'client', '-n', 'prod', '--proto', 'TCP', '--port', '80', '--count', '3', '--timeout', '5', '--dst-ip', '10.0.0.2']));
    expect(q.toString()).toBe('pod=client&namespace=prod&dst-ip=10.0.0.2&port=80&proto=tcp&count=3&timeout=5');
    expect(traceQuery(parseArgs([])).toString()).toBe('count=10');
    expect(() => traceQuery(parseArgs(['--proto', 'gre']))).toThrow(/tcp, udp or icmp/);
    expect(() => traceQuery(parseArgs(['--ip', '300.1.1.1']))).toThrow(/IPv4/);
    expect(() => traceQuery(parseArgs(['-n', 'x']))).toThrow(/needs --pod/);
  });
});
