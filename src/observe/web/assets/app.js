/* global document, window, fetch, URL, EventSource, requestAnimationFrame, setTimeout, clearTimeout */
// The page's script: fetches the ring and the service map, follows /api/events, filters client side.
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var MAX_FLOWS = 5000;
  var MAX_ROWS = 400;
  var NODE_W = window.ciliaryMapLayout.size.NODE_W;
  var NODE_H = window.ciliaryMapLayout.size.NODE_H;
  var COL_GAP = window.ciliaryMapLayout.size.COL_GAP;
  var layout = window.ciliaryMapLayout.layout;

  var flows = [];
  var seen = new Set();
  var lostTotal = 0;
  var map = { nodes: [], edges: [] };
  var selected = '';
  var $ = function (id) { return document.getElementById(id); };

  // ---- helpers -------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function verdictClass(v) { return v === 'FORWARDED' || v === 'DROPPED' ? v : 'other'; }
  function l4Of(f) { var l = f.l4 || {}; return l.TCP ? ['TCP', l.TCP] : l.UDP ? ['UDP', l.UDP] : l.ICMPv4 ? ['ICMPv4', null] : [null, null]; }
  function portText(f) {
    var p = l4Of(f);
    if (!p[0]) return '';
    if (!p[1] || !p[1].destination_port) return p[0];
    return p[1].destination_port + '/' + p[0];
  }
  function l7Text(f) {
    var l7 = f.l7;
    if (!l7) return '';
    if (l7.http) {
      var h = l7.http;
      var path = h.url || '';
      try { var u = new URL(h.url); path = u.pathname + u.search; } catch { /* relative */ }
      var s = (l7.type === 'RESPONSE' ? '← ' : '→ ') + (h.method || '') + ' ' + path;
      if (h.code) s += ' ' + h.code;
      return s;
    }
    if (l7.dns) return 'DNS ' + (l7.type === 'RESPONSE' ? '← ' : '→ ') + l7.dns.query + (l7.dns.ips && l7.dns.ips.length ? ' ' + l7.dns.ips.join(',') : '');
    return l7.type || 'L7';
  }
  function timeText(t) {
    var d = new Date(String(t).replace(/(\.\d{3})\d+/, '$1'));
    if (isNaN(d.getTime())) return String(t);
    var p = function (n, w) { return String(n).padStart(w || 2, '0'); };
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds()) + '.' + p(d.getMilliseconds(), 3);
  }
  function epName(ep) {
    if (ep.pod_name) return { ns: ep.namespace || 'default', name: ep.pod_name };
    var labels = ep.labels || [];
    for (var i = 0; i < labels.length; i++) if (labels[i].indexOf('reserved:') === 0) return { ns: '', name: labels[i].slice(9) };
    var reserved = { 1: 'host', 2: 'world', 4: 'health', 6: 'remote-node', 7: 'kube-apiserver' };
    return { ns: ep.namespace || '', name: reserved[ep.identity] || (ep.identity ? 'identity ' + ep.identity : 'unknown') };
  }

  // ---- filters (hubble observe's basic flags) -------------------------------------------------
  var F = ['namespace', 'pod', 'verdict', 'protocol', 'port', 'text'];
  function filters() {
    var o = {};
    F.forEach(function (k) { o[k] = $('f-' + k).value.trim(); });
    return o;
  }
  function podMatches(ep, q) {
    // --pod [namespace/]prefix, as hubble observe matches it.
    var ns = ep.namespace || '';
    var name = ep.pod_name || '';
    var slash = q.indexOf('/');
    if (slash >= 0) return !!name && ns === q.slice(0, slash) && name.indexOf(q.slice(slash + 1)) === 0;
    var wl = ep.workloads && ep.workloads[0] ? ep.workloads[0].name : '';
    return !!name && (name.indexOf(q) === 0 || wl === q);
  }
  function matches(f, q) {
    var s = f.source || {}, d = f.destination || {};
    if (q.namespace && s.namespace !== q.namespace && d.namespace !== q.namespace) return false;
    if (q.pod && !podMatches(s, q.pod) && !podMatches(d, q.pod)) return false;
    if (q.verdict && f.verdict !== q.verdict) return false;
    if (q.protocol) {
      var l4 = l4Of(f)[0] || '';
      var p = q.protocol;
      var ok = p === 'http' ? !!(f.l7 && f.l7.http) : p === 'dns' ? !!(f.l7 && f.l7.dns) || /(^|\/)53\//.test(portText(f) + '/') : l4.toLowerCase().indexOf(p) === 0;
      if (!ok) return false;
    }
    if (q.port) {
      var t = l4Of(f)[1];
      if (!t || (String(t.source_port) !== q.port && String(t.destination_port) !== q.port)) return false;
    }
    if (q.text) {
      var hay = (f.Summary || '') + ' ' + JSON.stringify(f);
      if (hay.toLowerCase().indexOf(q.text.toLowerCase()) < 0) return false;
    }
    return true;
  }

  // ---- flow table ------------------------------------------------------------------------------
  function epCell(ep, ip) {
    var td = el('td', { class: 'ep' });
    var n = epName(ep);
    if (n.ns) td.appendChild(el('span', { class: 'ns' }, n.ns + '/'));
    td.appendChild(el('span', { class: 'name' }, n.name));
    if (ip) td.appendChild(el('span', { class: 'ip' }, ip));
    return td;
  }
  function row(f) {
    var tr = el('tr', { class: 'flow ' + f.verdict, 'data-verdict': f.verdict });
    tr.appendChild(el('td', { class: 'time', title: f.time }, timeText(f.time)));
    tr.appendChild(epCell(f.source || {}, f.IP && f.IP.source));
    tr.appendChild(epCell(f.destination || {}, f.IP && f.IP.destination));
    tr.appendChild(el('td', { class: 'port' }, portText(f)));
    var l7 = l7Text(f);
    tr.appendChild(el('td', { class: 'l7', title: l7 }, l7));
    var v = el('td', { class: 'verdict-cell' });
    var badge = el('span', { class: 'verdict ' + f.verdict }, f.verdict);
    if (f.drop_reason_desc) badge.title = f.drop_reason_desc;
    v.appendChild(badge);
    tr.appendChild(v);
    tr.appendChild(el('td', { class: 'summary' }, f.Summary || ''));
    return tr;
  }
  var tablePending = false;
  function renderTable() {
    tablePending = false;
    var q = filters();
    var body = $('flow-rows');
    var frag = document.createDocumentFragment();
    var n = 0;
    for (var i = flows.length - 1; i >= 0 && n < MAX_ROWS; i--) {
      if (!matches(flows[i], q)) continue;
      frag.appendChild(row(flows[i]));
      n++;
    }
    body.replaceChildren(frag);
    $('flows-empty').hidden = n > 0;
    $('flow-count').textContent = flows.length + ' flows';
  }
  function scheduleTable() {
    if (tablePending) return;
    tablePending = true;
    requestAnimationFrame(renderTable);
  }
  function addFlow(f) {
    if (f.uuid) {
      if (seen.has(f.uuid)) return;
      seen.add(f.uuid);
    }
    flows.push(f);
    if (flows.length > MAX_FLOWS) {
      var gone = flows.splice(0, flows.length - MAX_FLOWS);
      gone.forEach(function (g) { if (g.uuid) seen.delete(g.uuid); });
    }
  }

  // ---- service map ---------------------------------------------------------------------------
  function icon(kind) {
    var g = svg('g', { transform: 'translate(14,14)' });
    if (kind === 'world') {
      g.appendChild(svg('circle', { class: 'icon', cx: 9, cy: 9, r: 8 }));
      g.appendChild(svg('ellipse', { class: 'icon', cx: 9, cy: 9, rx: 3.6, ry: 8 }));
      g.appendChild(svg('path', { class: 'icon', d: 'M1 9h16M2.5 4.5h13M2.5 13.5h13' }));
    } else if (kind === 'host' || kind === 'remote-node' || kind === 'kube-apiserver') {
      g.appendChild(svg('rect', { class: 'icon', x: 1, y: 2, width: 16, height: 6, rx: 1.5 }));
      g.appendChild(svg('rect', { class: 'icon', x: 1, y: 10, width: 16, height: 6, rx: 1.5 }));
      g.appendChild(svg('circle', { class: 'icon-fill', cx: 4.5, cy: 5, r: 1 }));
      g.appendChild(svg('circle', { class: 'icon-fill', cx: 4.5, cy: 13, r: 1 }));
    } else {
      // A pod: a small cube.
      g.appendChild(svg('path', { class: 'icon', d: 'M9 1l7.5 4v8L9 17l-7.5-4V5z' }));
      g.appendChild(svg('path', { class: 'icon', d: 'M1.5 5L9 9l7.5-4M9 9v8' }));
    }
    return g;
  }
  function trim(s, n) { return s.length > n ? s.slice(0, n - 1) + '…' : s; }
  function nodeGroup(n, p) {
    var g = svg('g', {
      class: 'node ' + n.kind + (selected === n.id ? ' selected' : ''), transform: 'translate(' + p.x + ',' + p.y + ')',
      'data-id': n.id, 'data-label': n.label, 'data-namespace': n.namespace || '', 'data-nodes': (n.nodes || []).join(','),
    });
    g.appendChild(svg('rect', { class: 'card', width: NODE_W, height: NODE_H, rx: 10 }));
    g.appendChild(icon(n.kind));
    g.appendChild(svg('text', { class: 'ns', x: 42, y: 22 }, n.namespace ? n.namespace : n.kind === 'workload' ? '' : 'reserved'));
    // The cluster nodes its pods run on.
    if (n.nodes && n.nodes.length) g.appendChild(svg('text', { class: 'node-name', x: NODE_W - 12, y: 22, 'text-anchor': 'end' }, trim(n.nodes.join(', '), 18)));
    g.appendChild(svg('text', { class: 'name', x: 42, y: 42 }, trim(n.label, 20)));
    var meta = n.kind === 'workload'
      ? (n.pods.length + (n.pods.length === 1 ? ' pod' : ' pods')) + (n.labels.length ? ' · ' + trim(n.labels.filter(function (l) { return l.indexOf('class=') === 0 || l.indexOf('app=') === 0; }).join(' ') || n.labels[0], 22) : '')
      : (n.identities.length ? 'identity ' + n.identities.join(', ') : '');
    g.appendChild(svg('text', { class: 'meta', x: 42, y: 60 }, meta));
    var t = svg('title', null, n.id + '\n' + n.flows + ' flows' + (n.labels.length ? '\n' + n.labels.join('\n') : ''));
    g.appendChild(t);
    g.addEventListener('click', function () {
      selected = selected === n.id ? '' : n.id;
      $('f-pod').value = selected && n.kind === 'workload' ? n.namespace + '/' + n.label : '';
      renderMap();
      scheduleTable();
    });
    return g;
  }
  var LANE = 26;
  function spans(a, b) { return b.x - a.x > NODE_W + COL_GAP + 1; }
  function edgePath(a, b, y1, y2, laneY) {
    var x1 = a.x + NODE_W, x2 = b.x;
    if (laneY !== undefined) {
      // Skips a column: up into its own lane above the cards, across, and down into the destination.
      var d1 = 'M' + x1 + ' ' + y1 + ' C' + (x1 + 70) + ' ' + y1 + ' ' + (x1 + 40) + ' ' + laneY + ' ' + (x1 + 120) + ' ' + laneY
        + ' L' + (x2 - 120) + ' ' + laneY + ' C' + (x2 - 40) + ' ' + laneY + ' ' + (x2 - 70) + ' ' + y2 + ' ' + (x2 - 8) + ' ' + y2;
      return { d: d1, mx: (x1 + x2) / 2, my: laneY, ax: x2, ay: y2, dir: 1 };
    }
    if (b.x > a.x) {
      var dx = (x2 - x1) / 2;
      // The label sits on the curve, two thirds of the way: near the destination, apart from its siblings.
      var t = 0.62, u = 1 - t;
      var bx = u * u * u * x1 + 3 * u * u * t * (x1 + dx) + 3 * u * t * t * (x2 - dx) + t * t * t * (x2 - 8);
      var by = u * u * u * y1 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t * t * t * y2;
      return { d: 'M' + x1 + ' ' + y1 + ' C' + (x1 + dx) + ' ' + y1 + ' ' + (x2 - dx) + ' ' + y2 + ' ' + (x2 - 8) + ' ' + y2, mx: bx, my: by, ax: x2, ay: y2, dir: 1 };
    }
    // Same column or backwards: loop under the cards, entering the destination from the right.
    x2 = b.x + NODE_W;
    var drop = Math.max(a.y, b.y) + NODE_H + 40;
    var d = 'M' + x1 + ' ' + y1 + ' C' + (x1 + 90) + ' ' + y1 + ' ' + (x1 + 90) + ' ' + drop + ' ' + ((x1 + x2) / 2) + ' ' + drop
      + ' S' + (x2 + 90) + ' ' + y2 + ' ' + (x2 + 8) + ' ' + y2;
    return { d: d, mx: (x1 + x2) / 2, my: drop, ax: x2, ay: y2, dir: -1 };
  }
  /** Spreads the curves leaving (or entering) one card along its side, ordered by the far end's height. */
  function anchors(curves, P) {
    var out = {}, inn = {};
    curves.forEach(function (c) {
      (out[c.e.source] = out[c.e.source] || []).push(c);
      (inn[c.e.destination] = inn[c.e.destination] || []).push(c);
    });
    var spread = function (groups, key, far) {
      Object.keys(groups).forEach(function (id) {
        var g = groups[id];
        g.sort(function (p, q) { return P[p.e[far]].y - P[q.e[far]].y || p.i - q.i; });
        g.forEach(function (c, i) { c[key] = P[id].y + NODE_H * (g.length === 1 ? 0.5 : 0.22 + 0.56 * i / (g.length - 1)); });
      });
    };
    spread(out, 'y1', 'destination');
    spread(inn, 'y2', 'source');
  }
  function renderMap() {
    var root = $('map');
    var nodes = map.nodes || [];
    var edges = map.edges || [];
    $('map-empty').hidden = nodes.length > 0;
    $('node-count').textContent = nodes.filter(function (n) { return n.kind === 'workload'; }).length + ' workloads';
    var L = layout(nodes, edges);
    var pad = 40;
    var lanes = edges.filter(function (e) { var a = L.pos[e.source], b = L.pos[e.destination]; return a && b && spans(a, b); })
      .reduce(function (n, e) { return n + Math.max(1, (e.outcomes || []).length); }, 0);
    var top = lanes ? lanes * LANE + 24 : 0;
    var w = Math.max(L.width + 2 * pad, 600), h = Math.max(L.height + top + 2 * pad + 80, 260);
    var ox = (w - L.width) / 2, oy = pad + 10 + top;
    root.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    root.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    var gBands = svg('g', { class: 'ns-groups' }), gEdges = svg('g', { class: 'edges' }), gLabels = svg('g', { class: 'labels' }), gNodes = svg('g', { class: 'nodes' });
    var P = {};
    for (var id in L.pos) P[id] = { x: L.pos[id].x + ox, y: L.pos[id].y + oy };
    L.bands.forEach(function (b) {
      var g = svg('g', { class: 'ns-group' + (b.namespace ? '' : ' reserved'), 'data-namespace': b.namespace });
      g.appendChild(svg('rect', { x: ox - 18, y: b.y + oy, width: L.width + 36, height: b.h, rx: 14 }));
      g.appendChild(svg('text', { x: ox - 6, y: b.y + oy + 20 }, b.namespace ? 'namespace ' + b.namespace : 'outside the namespaces'));
      gBands.appendChild(g);
    });
    // One curve per verdict class present: a mixed edge shows green and red side by side.
    var curves = [];
    edges.forEach(function (e) {
      if (!P[e.source] || !P[e.destination] || e.source === e.destination) return;
      var classes = (e.outcomes || []).slice().sort();
      if (!classes.length) classes = ['other'];
      classes.forEach(function (vc, i) { curves.push({ e: e, vc: vc, i: i }); });
    });
    anchors(curves, P);
    // Lanes: the shortest skip runs nearest the cards, so lanes do not cross each other.
    var minY = Infinity;
    for (var k in P) minY = Math.min(minY, P[k].y);
    curves.filter(function (c) { return spans(P[c.e.source], P[c.e.destination]); })
      .sort(function (p, q) { return (P[p.e.destination].x - P[p.e.source].x) - (P[q.e.destination].x - P[q.e.source].x) || p.y1 - q.y1; })
      .forEach(function (c, i) { c.lane = minY - 24 - i * LANE; });
    var placed = [];
    curves.forEach(function (c) {
      var e = c.e, vc = c.vc;
      var p = edgePath(P[e.source], P[e.destination], c.y1, c.y2, c.lane);
      var path = svg('path', { class: 'edge ' + vc, d: p.d, 'data-verdict': vc === 'other' ? Object.keys(e.verdicts || {}).join(',') : vc, 'data-source': e.source, 'data-destination': e.destination });
      path.appendChild(svg('title', null, e.source + ' → ' + e.destination + '\n' + Object.keys(e.verdicts || {}).map(function (k) { return k + ': ' + e.verdicts[k]; }).join('\n')));
      gEdges.appendChild(path);
      var ah = p.dir > 0 ? 'M' + p.ax + ' ' + p.ay + ' l-10 -5 v10 z' : 'M' + p.ax + ' ' + p.ay + ' l10 -5 v10 z';
      gEdges.appendChild(svg('path', { class: 'arrow-' + vc, d: ah }));
      var count = vc === 'other' ? e.flows : Object.keys(e.verdicts).filter(function (k) { return verdictClass(k) === vc; }).reduce(function (s, k) { return s + e.verdicts[k]; }, 0);
      var text = (e.l7.length ? e.l7.join('+') + ' · ' : '') + (e.ports.slice(0, 3).join(', ') || '') + (e.ports.length > 3 ? ' …' : '');
      text = (text || vc.toLowerCase()) + (vc === 'DROPPED' ? ' · dropped ×' + count : ' ×' + count);
      var tw = text.length * 6.6 + 14;
      // Labels never cover each other: nudge down until the spot is free.
      var box = { x: p.mx - tw / 2, y: p.my - 10, w: tw, h: 20 };
      for (var tries = 0; tries < 12 && placed.some(function (o) { return box.x < o.x + o.w && o.x < box.x + box.w && box.y < o.y + o.h + 3 && o.y < box.y + box.h + 3; }); tries++) box.y += 23;
      placed.push(box);
      var lg = svg('g', { class: 'edge-label ' + vc, 'data-source': e.source, 'data-destination': e.destination });
      lg.appendChild(svg('rect', { x: box.x, y: box.y, width: box.w, height: box.h, rx: 10 }));
      lg.appendChild(svg('text', { x: p.mx, y: box.y + 14, 'text-anchor': 'middle' }, text));
      gLabels.appendChild(lg);
    });
    nodes.forEach(function (n) { if (P[n.id]) gNodes.appendChild(nodeGroup(n, P[n.id])); });
    root.replaceChildren(gBands, gEdges, gNodes, gLabels);
    fitView(root, w, h);
  }
  /** The viewBox around everything drawn (cards, lanes, loops, labels), never smaller than w × h: the whole map fits the panel. */
  function fitView(root, w, h) {
    var bb;
    try { bb = root.getBBox(); } catch { return; }
    if (!bb || !bb.width) return;
    var m = 16;
    var vw = Math.max(bb.width + 2 * m, w), vh = Math.max(bb.height + 2 * m, h);
    root.setAttribute('viewBox', (bb.x - m - (vw - bb.width - 2 * m) / 2) + ' ' + (bb.y - m - (vh - bb.height - 2 * m) / 2) + ' ' + vw + ' ' + vh);
  }
  var mapTimer = null, mapBusy = false;
  function refreshMap() {
    if (mapBusy) { scheduleMap(); return; }
    mapBusy = true;
    fetch('api/servicemap').then(function (r) { return r.json(); }).then(function (m) {
      map = m;
      renderMap();
      var ns = {};
      m.nodes.forEach(function (n) { if (n.namespace) ns[n.namespace] = true; });
      var dl = $('ns-list');
      dl.replaceChildren.apply(dl, Object.keys(ns).sort().map(function (n) { return el('option', { value: n }); }));
    }).catch(function () { /* retried on the next flow */ }).then(function () { mapBusy = false; });
  }
  function scheduleMap() {
    if (mapTimer) return;
    mapTimer = setTimeout(function () { mapTimer = null; refreshMap(); }, 800);
  }

  // ---- live stream -----------------------------------------------------------------------------
  function connect() {
    var es = new EventSource('api/events');
    var conn = $('conn');
    es.onopen = function () { conn.textContent = 'live'; conn.className = 'conn on'; };
    es.onerror = function () { conn.textContent = 'reconnecting'; conn.className = 'conn off'; };
    es.addEventListener('flow', function (ev) {
      try { addFlow(JSON.parse(ev.data)); } catch { return; }
      scheduleTable();
      scheduleMap();
    });
    es.addEventListener('lost', function (ev) {
      var n = 0;
      try { n = JSON.parse(ev.data).lost; } catch { /* ignore */ }
      lostTotal += n;
      var box = $('lost');
      box.hidden = false;
      box.textContent = lostTotal + ' flows were lost: this page could not keep up with the stream.';
    });
  }

  var debounce = null;
  F.forEach(function (k) {
    $('f-' + k).addEventListener('input', function () { clearTimeout(debounce); debounce = setTimeout(renderTable, 80); });
  });
  $('f-clear').addEventListener('click', function () {
    F.forEach(function (k) { $('f-' + k).value = ''; });
    selected = '';
    renderMap();
    renderTable();
  });
  window.addEventListener('resize', function () { /* the SVG scales with its viewBox */ });

  connect();
  fetch('api/flows?last=2000').then(function (r) { return r.json(); }).then(function (list) {
    list.forEach(addFlow);
    // Flows that came through the stream first are newer than the ring's: keep time order.
    flows.sort(function (a, b) { return a.time < b.time ? -1 : a.time > b.time ? 1 : 0; });
    renderTable();
  }).catch(function () { renderTable(); });
  refreshMap();
  fetch('api/status').then(function (r) { return r.json(); }).then(function (s) {
    if (!s.hubble) $('map-empty').textContent = 'Hubble is not recording flows yet (enable-hubble).';
  }).catch(function () { /* the stream will say */ });
})();
