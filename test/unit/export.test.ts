// The flow exporter: hubble observe -o json lines, lumberjack rotation, allow/deny filters, field
// masks, URL-query redaction, and an unwritable path that is counted and logged but never fatal.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowExporter } from '../../src/observe/export/exporter.ts';
import { compileFilters, applyFilters, parseFilterList } from '../../src/observe/export/filter.ts';
import { applyFieldMask, parseFieldMask } from '../../src/observe/export/fieldmask.ts';
import { redactFlow, stripUrlQuery } from '../../src/observe/export/redact.ts';
import { backupTimestamp } from '../../src/observe/export/rotating-file.ts';
import { openMetricsRegistry, render } from '../../src/observe/metrics/exposition.ts';
import type { Flow } from '../../src/observe/flow.ts';

const client = { ID: 11, identity: 1001, namespace: 'default', pod_name: 'xwing-1', labels: ['k8s:app=xwing', 'k8s:class=fighter'] };
const server = { ID: 22, identity: 1002, namespace: 'empire', pod_name: 'deathstar-6f8c', labels: ['k8s:app=deathstar'], workloads: [{ name: 'deathstar', kind: 'Deployment' }] };

let seq = 0;
function flow(over: Partial<Flow> = {}): Flow {
  return {
    time: `2025-01-01T00:00:00.${String(seq).padStart(9, '0')}Z`, uuid: `u${seq++}`, verdict: 'FORWARDED',
    IP: { source: '172.20.1.11', destination: '172.20.2.22', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 40000, destination_port: 80, flags: { SYN: true } } },
    source: client, destination: server, Type: 'L3_L4', node_name: 'node-a', event_type: { type: 4, sub_type: 0 },
    traffic_direction: 'EGRESS', is_reply: false, Summary: 'TCP Flags: SYN', ...over,
  };
}
const httpFlow = (url: string, method = 'GET', code?: number) => flow({
  Type: 'L7', event_type: { type: 129 }, l7: { type: code ? 'RESPONSE' : 'REQUEST', http: { method, url, protocol: 'HTTP/1.1', ...(code ? { code } : {}) } },
  Summary: `HTTP/1.1 ${method} ${url}`,
});

const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe('flow filters', () => {
  const pass = (allow: string, deny: string, f: Flow) => applyFilters(compileFilters(parseFilterList(allow), parseFilterList(deny)), f);

  it('parses arrays, comma- and newline-separated filter objects', () => {
    expect(parseFilterList('')).toEqual([]);
    expect(parseFilterList('{"verdict":["DROPPED"]},{"source_pod":["default/"]}')).toHaveLength(2);
    expect(parseFilterList('{"verdict":["DROPPED"]}\n{"source_pod":["default/"]}')).toHaveLength(2);
    expect(parseFilterList('[{"verdict":["DROPPED"]}]')).toHaveLength(1);
    expect(() => parseFilterList('{verdict}', 'hubble-export-allowlist')).toThrow(/hubble-export-allowlist: not a JSON/);
    expect(() => compileFilters(parseFilterList('{"colour":["blue"]}'), [])).toThrow(/unknown field "colour"/);
  });

  it('matches the common FlowFilter fields', () => {
    expect(pass('{"verdict":["DROPPED"]}', '', flow())).toBe(false);
    expect(pass('{"verdict":["DROPPED"]}', '', flow({ verdict: 'DROPPED' }))).toBe(true);
    expect(pass('{"source_pod":["default/xwing"]}', '', flow())).toBe(true);
    expect(pass('{"source_pod":["empire/"]}', '', flow())).toBe(false);
    expect(pass('{"destination_pod":["empire/"]}', '', flow())).toBe(true);
    expect(pass('{"destination_pod":["empire/deathstar"]}', '', flow())).toBe(true);
    expect(pass('{"destination_pod":["deathstar"]}', '', flow())).toBe(false); // a bare name is in namespace default, as Hubble's
    expect(pass('{"source_ip":["172.20.1.0/24"]}', '', flow())).toBe(true);
    expect(pass('{"source_ip":["172.20.2.0/24"]}', '', flow())).toBe(false);
    expect(pass('{"destination_ip":["172.20.2.22"]}', '', flow())).toBe(true);
    expect(pass('{"protocol":["udp"]}', '', flow())).toBe(false);
    expect(pass('{"protocol":["TCP"]}', '', flow())).toBe(true);
    expect(pass('{"protocol":["http"]}', '', httpFlow('/x'))).toBe(true);
    expect(pass('{"event_type":[{"type":4}]}', '', flow())).toBe(true);
    expect(pass('{"event_type":[{"type":4,"match_sub_type":true,"sub_type":3}]}', '', flow())).toBe(false);
    expect(pass('{"http_method":["post"]}', '', httpFlow('/x', 'POST'))).toBe(true);
    expect(pass('{"http_method":["POST"]}', '', httpFlow('/x', 'GET'))).toBe(false);
    expect(pass('{"http_path":["^/v1/"]}', '', httpFlow('http://deathstar/v1/request-landing?x=1'))).toBe(true);
    expect(pass('{"http_status_code":["5+"]}', '', httpFlow('/x', 'GET', 503))).toBe(true);
    expect(pass('{"http_status_code":["5+"]}', '', httpFlow('/x', 'GET', 200))).toBe(false);
    expect(pass('{"source_label":["app=xwing"]}', '', flow())).toBe(true);
    expect(pass('{"source_label":["k8s:app=deathstar"]}', '', flow())).toBe(false);
    expect(pass('{"destination_port":["80"]}', '', flow())).toBe(true);
    expect(pass('{"traffic_direction":["ingress"]}', '', flow())).toBe(false);
    expect(pass('{"tcp_flags":[{"SYN":true}]}', '', flow())).toBe(true);
    expect(pass('{"reply":[true]}', '', flow())).toBe(false);
    expect(pass('{"node_name":["node-*"]}', '', flow())).toBe(true);
    expect(pass('{"destination_workload":[{"kind":"Deployment"}]}', '', flow())).toBe(true);
    expect(pass('{"source_identity":[1001]}', '', flow())).toBe(true);
  });

  it('ANDs fields within a filter, ORs filters, and the denylist wins', () => {
    expect(pass('{"verdict":["DROPPED"],"source_pod":["default/"]}', '', flow())).toBe(false);
    expect(pass('{"verdict":["DROPPED"]},{"source_pod":["default/"]}', '', flow())).toBe(true);
    expect(pass('', '{"destination_pod":["empire/"]}', flow())).toBe(false);
    expect(pass('{"source_pod":["default/"]}', '{"verdict":["DROPPED"]}', flow({ verdict: 'DROPPED' }))).toBe(false);
    expect(pass('', '', flow())).toBe(true);
  });
});

describe('field mask and redaction', () => {
  it('keeps only the listed top-level and dotted fields', () => {
    const f = httpFlow('http://deathstar/v1?secret=1');
    const masked = applyFieldMask(f, parseFieldMask('time,verdict,source.pod_name,l7.http.url,no.such.field'));
    expect(masked).toEqual({ time: f.time, verdict: 'FORWARDED', source: { pod_name: 'xwing-1' }, l7: { http: { url: 'http://deathstar/v1?secret=1' } } });
    expect(applyFieldMask(f, parseFieldMask(''))).toBe(f);
    expect(() => parseFieldMask('source..pod')).toThrow(/invalid path/);
  });

  it('removes the URL query (and keeps the fragment) only with both redact keys on', () => {
    expect(stripUrlQuery('http://h/p?a=1&b=2#frag')).toBe('http://h/p#frag');
    expect(stripUrlQuery('/p?token=x')).toBe('/p');
    const f = httpFlow('http://deathstar/v1/request-landing?token=s3cret');
    expect(redactFlow(f, { enabled: false, httpUrlQuery: true })).toBe(f);
    expect(redactFlow(f, { enabled: true, httpUrlQuery: false })).toBe(f);
    const r = redactFlow(f, { enabled: true, httpUrlQuery: true });
    expect(r.l7?.http?.url).toBe('http://deathstar/v1/request-landing');
    expect(r.Summary).toBe('HTTP/1.1 GET http://deathstar/v1/request-landing');
    expect(f.l7?.http?.url).toContain('token'); // the original flow (shared with Hubble's ring) is untouched
  });

  it('redacts every HTTP header value once redaction is on (no header allow/deny lists, as Hubble)', () => {
    const f = httpFlow('http://deathstar/');
    f.l7!.http!.headers = [{ key: 'Authorization', value: 'Bearer s3cret' }, { key: 'X-Request-Id', value: 'a1b2' }];
    expect(redactFlow(f, { enabled: false, httpUrlQuery: false })).toBe(f);
    const r = redactFlow(f, { enabled: true, httpUrlQuery: false });
    expect(r.l7?.http?.headers).toEqual([{ key: 'Authorization', value: 'HUBBLE_REDACTED' }, { key: 'X-Request-Id', value: 'HUBBLE_REDACTED' }]);
    expect(r.l7?.http?.url).toBe('http://deathstar/');
    expect(f.l7?.http?.headers?.[0].value).toBe('Bearer s3cret');
  });
});

describe('flow exporter', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-export-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes hubble observe -o json lines: {flow, node_name, time}', async () => {
    const path = join(dir, 'sub', 'flows.log');
    const e = new FlowExporter({ path, nodeName: 'node-a' });
    const f = flow();
    e.onFlow(f);
    e.onFlow(flow({ verdict: 'DROPPED', drop_reason: 133, drop_reason_desc: 'POLICY_DENIED' }));
    await e.close();
    const out = lines(path);
    expect(out).toHaveLength(2);
    expect(Object.keys(out[0])).toEqual(['flow', 'node_name', 'time']);
    expect(out[0]).toEqual({ flow: f, node_name: 'node-a', time: f.time });
    expect(out[1].flow.drop_reason_desc).toBe('POLICY_DENIED');
  });

  it('applies allowlist, denylist, field mask and redaction', async () => {
    const path = join(dir, 'flows.log');
    const e = new FlowExporter({
      path, nodeName: 'n', allowlist: '{"protocol":["http"]},{"verdict":["DROPPED"]}', denylist: '{"http_method":["DELETE"]}',
      fieldMask: 'time,verdict,l7.http.url,Summary', redact: { enabled: true, httpUrlQuery: true },
    });
    e.onFlow(flow());
    e.onFlow(flow({ verdict: 'DROPPED' }));
    e.onFlow(httpFlow('http://deathstar/v1?token=abc'));
    e.onFlow(httpFlow('http://deathstar/v1', 'DELETE'));
    await e.close();
    const out = lines(path);
    expect(out.map((l) => l.flow)).toEqual([
      { time: expect.any(String), verdict: 'DROPPED', Summary: 'TCP Flags: SYN' },
      { time: expect.any(String), verdict: 'FORWARDED', l7: { http: { url: 'http://deathstar/v1' } }, Summary: 'HTTP/1.1 GET http://deathstar/v1' },
    ]);
    expect(e.stats.filtered).toBe(2);
  });

  it('rotates by size with lumberjack names and keeps max backups', async () => {
    const path = join(dir, 'flows.log');
    const e = new FlowExporter({ path, nodeName: 'n', maxSizeBytes: 2048, maxBackups: 2 });
    const size = Buffer.byteLength(JSON.stringify({ flow: flow(), node_name: 'node-a', time: flow().time }) + '\n');
    const perFile = Math.floor(2048 / size);
    const total = perFile * 4 + 1;
    for (let i = 0; i < total; i++) {
      e.onFlow(flow());
      if (i % 7 === 0) await e.flush(); // several writes, so rotation happens between and within batches
    }
    await e.close();
    const files = readdirSync(dir).sort();
    const backups = files.filter((n) => n !== 'flows.log');
    expect(files).toContain('flows.log');
    expect(backups).toHaveLength(2);
    for (const b of backups) expect(b).toMatch(/^flows-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.log$/);
    for (const n of files) {
      const text = readFileSync(join(dir, n), 'utf8');
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(2048);
      expect(text.endsWith('\n')).toBe(true); // whole lines only
    }
    expect(lines(path)).toHaveLength(1);
    expect(lines(join(dir, backups[1]))).toHaveLength(perFile);
    expect(e.stats.exported).toBe(total);
    expect(backupTimestamp(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)))).toBe('2024-01-02T03-04-05.006');
  });

  it('appends to an existing file and rotates it when full', async () => {
    const path = join(dir, 'flows.log');
    writeFileSync(path, 'x'.repeat(1000) + '\n');
    const e = new FlowExporter({ path, nodeName: 'n', maxSizeBytes: 1200 });
    e.onFlow(flow());
    await e.close();
    expect(readdirSync(dir)).toHaveLength(2);
    expect(lines(path)).toHaveLength(1);
  });

  it('an unwritable path is logged and counted, never thrown; it recovers when the path becomes writable', async () => {
    const blocker = join(dir, 'blocker');
    writeFileSync(blocker, ''); // a file where a directory is needed: open fails with ENOTDIR/EEXIST
    const path = join(blocker, 'flows.log');
    const warnings: object[] = [];
    const registry = openMetricsRegistry();
    const e = new FlowExporter({ path, nodeName: 'n', retryMs: 50, registry, log: { warn: (o) => warnings.push(o), error: (o) => warnings.push(o) } });
    for (let i = 0; i < 3; i++) e.onFlow(flow());
    await e.flush();
    expect(e.stats.dropped).toBe(3);
    e.onFlow(flow()); // waits for the retry, then fails again
    await new Promise((r) => setTimeout(r, 150));
    expect(e.stats.dropped).toBe(4);
    expect(e.stats.errors).toBeGreaterThanOrEqual(1);
    expect(warnings).toHaveLength(1);
    const text = await render([registry], false);
    expect(text).toMatch(/hubble_export_errors_total\{operation="open"\} [1-9]/);
    expect(text).toContain('hubble_export_flows_dropped_total{reason="write_error"} 4');
    rmSync(blocker);
    e.onFlow(flow());
    await new Promise((r) => setTimeout(r, 120));
    await e.close();
    expect(lines(path)).toHaveLength(1);
  });

  it('a read-only file is an error too, and a full queue drops and counts', async () => {
    const path = join(dir, 'ro.log');
    writeFileSync(path, '');
    chmodSync(path, 0o400);
    const e = new FlowExporter({ path, nodeName: 'n', queueSize: 2 });
    for (let i = 0; i < 5; i++) e.onFlow(flow());
    await e.close();
    // root ignores file modes: either the two queued lines were written, or they failed; three never fit the queue.
    expect(e.stats.dropped).toBeGreaterThanOrEqual(3);
    expect(e.stats.dropped + e.stats.exported).toBe(5);
  });
});
