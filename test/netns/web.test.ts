// The Hubble-UI-like page on :12000 with a real agent and the Star Wars workloads: traffic is driven,
// then headless Chromium (playwright-core) runs inside the agent's node namespace, opens the page
// and reports what it rendered: workload cards, edge colours and flow-table rows, and a drop sent
// while the page is open.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { poll, requireRoot, run, spawnTracked, stop, waitForOutput } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
const repo = join(import.meta.dirname, '..', '..');
const SCREENSHOT = '/tmp/ciliary-web.png';

const SERVER = ['node', '-e', `require('http').createServer((q,s)=>{
  if(q.method==='POST'&&q.url==='/v1/request-landing'){q.resume();return s.end('Ship landed\\n')}
  if(q.method==='PUT'&&q.url==='/v1/exhaust-port'){q.resume();return s.end('Panic: deathstar exploded\\n')}
  q.resume();s.end('ok\\n')
}).listen(80,'0.0.0.0')`];

const cnp = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: 'default' }, spec });
const rule1 = (http?: unknown[]) => cnp('rule1', {
  endpointSelector: { matchLabels: { org: 'empire', class: 'deathstar' } },
  ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], ...(http ? { rules: { http } } : {}) }] }],
});

// Runs under `ip netns exec <node netns> node browser.mjs <profile dir>`: prints "OPEN" once the page
// has rendered the earlier traffic, waits for the drop the test then sends (to port LIVE_PORT), and
// prints one JSON line.
const LIVE_PORT = 9999;
const BROWSER = `
const LIVE_PORT = ${LIVE_PORT};
import { chromium } from ${JSON.stringify(join(repo, 'node_modules', 'playwright-core', 'index.mjs'))};
const ctx = await chromium.launchPersistentContext(process.argv[2], {
  executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1440, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
try {
  const page = ctx.pages()[0] ?? await ctx.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  const res = await page.goto('http://127.0.0.1:12000/', { waitUntil: 'domcontentloaded', timeout: 15000 });
  await page.waitForSelector('g.node[data-id="default/xwing"]', { timeout: 15000 });
  await page.waitForSelector('path.edge[data-source="default/xwing"][data-destination="default/deathstar"]', { timeout: 15000 });
  await page.waitForSelector('tr.flow.DROPPED', { timeout: 15000 });
  await page.waitForFunction(() => document.getElementById('conn').classList.contains('on'), null, { timeout: 10000 });
  console.log('OPEN');
  const live = await page.waitForFunction((port) => [...document.querySelectorAll('tr.flow.DROPPED')].find((r) => r.querySelectorAll('td')[3].textContent === port)?.querySelectorAll('td')[1].textContent,
    LIVE_PORT + '/TCP', { timeout: 15000 }).then((h) => h.jsonValue(), () => null);
  await page.screenshot({ path: ${JSON.stringify(SCREENSHOT)}, fullPage: true });
  const found = await page.evaluate(() => ({
    live: null,
    title: document.title,
    nodes: [...document.querySelectorAll('g.node')].map((g) => ({ id: g.dataset.id, label: g.querySelector('.name').textContent, namespace: g.dataset.namespace, nodes: g.dataset.nodes })),
    // Where each card, namespace group and the map panel are on the screen.
    boxes: (() => {
      const r = (e) => { const b = e.getBoundingClientRect(); return { left: b.left, top: b.top, right: b.right, bottom: b.bottom }; };
      return {
        viewport: { left: 0, top: 0, right: window.innerWidth, bottom: document.documentElement.scrollHeight },
        panel: r(document.getElementById('map-wrap')),
        cards: [...document.querySelectorAll('g.node')].map((g) => ({ id: g.dataset.id, namespace: g.dataset.namespace, ...r(g.querySelector('rect.card')) })),
        groups: [...document.querySelectorAll('g.ns-group')].map((g) => ({ namespace: g.dataset.namespace, ...r(g.querySelector('rect')) })),
      };
    })(),
    edges: [...document.querySelectorAll('path.edge')].map((p) => ({
      source: p.dataset.source, destination: p.dataset.destination, verdict: p.dataset.verdict, stroke: getComputedStyle(p).stroke,
    })),
    labels: [...document.querySelectorAll('g.edge-label')].map((g) => ({ source: g.dataset.source, destination: g.dataset.destination, text: g.textContent })),
    rows: [...document.querySelectorAll('tr.flow')].slice(0, 300).map((r) => {
      const c = r.querySelectorAll('td');
      const badge = r.querySelector('.verdict');
      return { source: c[1].textContent, destination: c[2].textContent, port: c[3].textContent, l7: c[4].textContent, verdict: badge.textContent, color: getComputedStyle(badge).color, summary: c[6].textContent };
    }),
  }));
  // A smaller window: the map scales down and every card still fits its panel.
  await page.setViewportSize({ width: 900, height: 640 });
  found.small = await page.evaluate(() => {
    const r = (e) => { const b = e.getBoundingClientRect(); return { left: b.left, top: b.top, right: b.right, bottom: b.bottom }; };
    return { panel: r(document.getElementById('map-wrap')), cards: [...document.querySelectorAll('g.node rect.card')].map((c) => ({ id: c.parentNode.dataset.id, ...r(c) })) };
  });
  // Client-side filters: verdict DROPPED + pod xwing leaves only xwing's drops.
  await page.selectOption('#f-verdict', 'DROPPED');
  await page.fill('#f-pod', 'default/xwing');
  await page.waitForFunction(() => [...document.querySelectorAll('tr.flow')].every((r) => r.dataset.verdict === 'DROPPED' && r.querySelectorAll('td')[1].textContent.startsWith('default/xwing')), null, { timeout: 5000 }).catch(() => undefined);
  found.live = live;
  found.filtered = await page.$$eval('tr.flow', (rows) => rows.map((r) => r.dataset.verdict + ' ' + r.querySelectorAll('td')[1].textContent));
  console.log(JSON.stringify({ status: res.status(), errors, ...found }));
} finally {
  await ctx.close();
}
`;

describe.skipIf(!root)('Hubble UI page', () => {
  const agent = new TestAgent();
  const dir = mkdtempSync(join(tmpdir(), 'ciliary-web-'));
  const inPod = (pod: string, cmd: string[], ms = 20_000, signal?: AbortSignal) => run('ip', ['netns', 'exec', agent.podNetns(pod), ...cmd], ms, signal);
  /** The xwing's SYN to deathstar:port, dropped by rule1: resolves once the datapath reported the drop. */
  const xwingDropped = (port: number) => agent.expectEvent('?type=drop', `the xwing SYN to port ${port} dropped`, (e) => e.reason === 133 && / -> [\d.]+:\d+ tcp SYN$/.test(e.summary) && e.summary.endsWith(`:${port} tcp SYN`),
    (signal) => inPod('xwing', ['curl', '-s', '--connect-timeout', '5', '-XPOST', port === 80 ? url('/v1/request-landing') : `http://${deathstarIP}:${port}/`], 10_000, signal), { stopAction: true });
  const policy = async (...objs: unknown[]) => {
    const r = await agent.api('PUT', '/v1/policy', objs);
    if (r.status >= 300) throw new Error(JSON.stringify(r.body));
  };
  const url = (path: string) => `http://deathstar.default.svc.cluster.local${path}`;
  let deathstarIP = '';

  beforeAll(async () => {
    await agent.start();
    deathstarIP = (await agent.createPod('deathstar', { org: 'empire', class: 'deathstar' }, SERVER)).podIP;
    await agent.createPod('tiefighter', { org: 'empire', class: 'tiefighter' });
    await agent.createPod('xwing', { org: 'alliance', class: 'xwing' });
    const svc = await agent.api('POST', '/v1/services', { name: 'deathstar', namespace: 'default', selector: { org: 'empire', class: 'deathstar' }, ports: [{ port: 80 }] });
    if (svc.status >= 300) throw new Error(JSON.stringify(svc.body));
    await poll('the deathstar to answer by name', async () => (await inPod('tiefighter', ['curl', '-s', '--max-time', '1', url('/')])).code === 0, 15_000, 100);
  });
  afterAll(async () => {
    await agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page and the APIs inside the node namespace', async () => {
    const curl = (path: string) => run('ip', ['netns', 'exec', agent.nodeNetns, 'curl', '-s', '-w', '\n%{http_code} %{content_type}', `http://127.0.0.1:12000${path}`]);
    const page = await curl('/');
    expect(page.stdout).toMatch(/^<!doctype html>/);
    expect(page.stdout).toMatch(/\n200 text\/html; charset=utf-8$/);
    const status = await curl('/api/status');
    expect(JSON.parse(status.stdout.split('\n')[0])).toMatchObject({ hubble: true });
  });

  it('Star Wars traffic: the map and table show the workloads, the denied xwing flow in red', async () => {
    // L3/L4 rule1: empire lands, the alliance is dropped.
    await policy(rule1());
    for (let i = 0; i < 3; i++) {
      expect((await inPod('tiefighter', ['curl', '-s', '-XPOST', url('/v1/request-landing')])).stdout).toBe('Ship landed\n');
    }
    await xwingDropped(80);
    // The L7 step: tiefighter's requests go through the proxy and show as HTTP on the edge.
    await policy(rule1([{ method: 'POST', path: '/v1/request-landing' }]));
    expect((await inPod('tiefighter', ['curl', '-s', '-XPOST', url('/v1/request-landing')])).stdout).toBe('Ship landed\n');
    expect((await inPod('tiefighter', ['curl', '-s', '-XPUT', url('/v1/exhaust-port')])).stdout).toBe('Access denied\r\n');

    // The server-side map knows the edges (once the flows of that traffic have reached Hubble).
    const serviceMap = async () => JSON.parse((await run('ip', ['netns', 'exec', agent.nodeNetns, 'curl', '-s', 'http://127.0.0.1:12000/api/servicemap'])).stdout);
    let map: any;
    const edge = (s: string, d: string) => map.edges.find((e: any) => e.source === `default/${s}` && e.destination === `default/${d}`);
    await poll('the service map edges', async () => {
      map = await serviceMap();
      return edge('xwing', 'deathstar')?.verdicts?.DROPPED > 0 && edge('tiefighter', 'deathstar')?.outcomes?.length === 2;
    }, 10_000, 200).catch(() => undefined);
    expect(edge('xwing', 'deathstar')).toMatchObject({ ports: ['80/TCP'] });
    expect(edge('xwing', 'deathstar').verdicts.DROPPED).toBeGreaterThan(0);
    // xwing's own egress verdict is FORWARDED, but deathstar's ingress drops every SYN: only red.
    expect(edge('xwing', 'deathstar').outcomes).toEqual(['DROPPED']);
    expect(edge('tiefighter', 'deathstar')).toMatchObject({ l7: ['HTTP'] });
    expect(edge('tiefighter', 'deathstar').verdicts.FORWARDED).toBeGreaterThan(0);
    // Landing is forwarded, the L7 step's PUT /v1/exhaust-port is dropped: both curves.
    expect(edge('tiefighter', 'deathstar').outcomes).toEqual(['DROPPED', 'FORWARDED']);
    const flows = JSON.parse((await run('ip', ['netns', 'exec', agent.nodeNetns, 'curl', '-s', 'http://127.0.0.1:12000/api/flows?last=20'])).stdout);
    expect(flows.length).toBeGreaterThan(0);
    expect(flows.length).toBeLessThanOrEqual(20);

    // A drop sent after the page is open arrives over the event stream.
    writeFileSync(join(dir, 'browser.mjs'), BROWSER);
    const browser = spawnTracked('ip', ['netns', 'exec', agent.nodeNetns, 'node', join(dir, 'browser.mjs'), join(dir, 'profile')]);
    let stdout = '';
    let stderr = '';
    browser.stdout!.on('data', (d) => (stdout += d));
    browser.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((r) => browser.once('exit', (c) => r(c ?? -1)));
    let code: number;
    try {
      await waitForOutput(browser, /^OPEN$/, 'the page to render', 60_000);
      await xwingDropped(LIVE_PORT);
      code = await exited;
    } finally {
      await stop(browser);
    }
    if (code !== 0) throw new Error(`browser failed (${code}): ${stderr.slice(-3000)}`);
    const got = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(got.live, 'the drop sent while the page was open').toMatch(/^default\/xwing/);
    expect(got.status).toBe(200);
    expect(got.errors).toEqual([]);
    expect(got.title).toMatch(/Hubble UI/);
    const labels = got.nodes.map((n: any) => n.label);
    for (const w of ['deathstar', 'tiefighter', 'xwing']) expect(labels).toContain(w);
    // Each workload card names the node its pod runs on.
    for (const w of ['deathstar', 'tiefighter', 'xwing']) expect(got.nodes.find((n: any) => n.id === `default/${w}`)).toMatchObject({ namespace: 'default', nodes: agent.node });

    // Client → server only: no edge back to a client, no label with a client's ephemeral port.
    expect(got.edges.filter((e: any) => e.source === 'default/deathstar')).toEqual([]);
    for (const l of got.labels) expect(l.text, `${l.source} → ${l.destination}`).not.toMatch(/\b(?:[3-5]\d{4}|6[0-5]\d{3})\/TCP/);

    // Every card inside the map panel (and the page), each inside its namespace's group.
    const inside = (a: any, b: any) => a.left >= b.left - 0.5 && a.top >= b.top - 0.5 && a.right <= b.right + 0.5 && a.bottom <= b.bottom + 0.5;
    expect(got.boxes.cards.length).toBeGreaterThanOrEqual(3);
    for (const c of got.boxes.cards) {
      expect(inside(c, got.boxes.panel), `${c.id} within the map panel ${JSON.stringify(got.boxes.panel)}: ${JSON.stringify(c)}`).toBe(true);
      expect(inside(c, got.boxes.viewport), `${c.id} within the page`).toBe(true);
      const group = got.boxes.groups.find((g: any) => g.namespace === c.namespace);
      expect(group && inside(c, group), `${c.id} within the group of namespace "${c.namespace}"`).toBe(true);
    }
    for (const c of got.small.cards) expect(inside(c, got.small.panel), `${c.id} within the map panel of a 900×640 window`).toBe(true);

    const RED = 'rgb(224, 52, 60)';
    const GREEN = 'rgb(31, 157, 85)';
    const xwingEdges = got.edges.filter((e: any) => e.source === 'default/xwing' && e.destination === 'default/deathstar');
    expect(xwingEdges).toEqual([expect.objectContaining({ verdict: 'DROPPED', stroke: RED })]);
    expect(got.edges).toContainEqual(expect.objectContaining({ source: 'default/tiefighter', destination: 'default/deathstar', verdict: 'FORWARDED', stroke: GREEN }));
    const tieLabel = got.labels.find((l: any) => l.source === 'default/tiefighter' && l.destination === 'default/deathstar');
    expect(tieLabel.text).toMatch(/^HTTP · 80\/TCP/);

    const drop = got.rows.find((r: any) => r.verdict === 'DROPPED' && r.source.startsWith('default/xwing') && r.destination.startsWith('default/deathstar') && r.port === '80/TCP');
    expect(drop).toMatchObject({ color: 'rgb(192, 38, 46)' });
    expect(got.rows).toContainEqual(expect.objectContaining({ verdict: 'FORWARDED', l7: expect.stringContaining('POST /v1/request-landing') }));
    expect(got.filtered.length).toBeGreaterThan(0);
    for (const r of got.filtered) expect(r).toMatch(/^DROPPED default\/xwing/);
  }, 150_000);
});
