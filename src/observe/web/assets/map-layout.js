/* global window */
// The service map's placement, before app.js: columns by call depth from the clients, namespaces as
// bands across the columns (reserved peers last) so each namespace's cards sit together, and within a
// band's column the cards ordered by the height of their callers (fewer crossings).
window.ciliaryMapLayout = (function () {
  'use strict';
  var NODE_W = 210;
  var NODE_H = 74;
  var COL_GAP = 260;
  var ROW_GAP = 34;
  var BAND_TITLE = 26;
  var BAND_PAD = 14;
  var BAND_GAP = 40;

  function layout(nodes, edges) {
    // Columns by longest path from the clients (nodes nobody calls); cycles are cut by a bound.
    var rank = {};
    nodes.forEach(function (n) { rank[n.id] = 0; });
    var fwd = edges.filter(function (e) { return e.source !== e.destination; });
    for (var it = 0; it < nodes.length; it++) {
      var changed = false;
      fwd.forEach(function (e) {
        if (rank[e.destination] < rank[e.source] + 1 && rank[e.source] + 1 < nodes.length) { rank[e.destination] = rank[e.source] + 1; changed = true; }
      });
      if (!changed) break;
    }
    var used = [];
    nodes.forEach(function (n) { used[rank[n.id]] = true; });
    var colOf = {}, ncols = 0;
    used.forEach(function (u, r) { if (u) colOf[r] = ncols++; });
    // Namespaces are bands across the columns (reserved peers last), so each namespace's cards sit together.
    var bandNames = [];
    nodes.forEach(function (n) { var b = n.namespace || ''; if (bandNames.indexOf(b) < 0) bandNames.push(b); });
    bandNames.sort(function (a, b) { return a === '' ? 1 : b === '' ? -1 : a < b ? -1 : a > b ? 1 : 0; });
    var order = function (n) { return (n.kind === 'workload' ? '0' : '1') + n.label; };
    var pos = {}, bands = [], y = 0;
    bandNames.forEach(function (b) {
      var cells = [];
      nodes.forEach(function (n) { if ((n.namespace || '') === b) (cells[colOf[rank[n.id]]] = cells[colOf[rank[n.id]]] || []).push(n); });
      var rows = 0;
      for (var ci = 0; ci < ncols; ci++) {
        var c = cells[ci] || [];
        c.sort(function (p, q) { return order(p) < order(q) ? -1 : order(p) > order(q) ? 1 : 0; });
        // Fewer crossings: by the mean height of the callers already placed, else alphabetically.
        var bary = {};
        c.forEach(function (n, i) {
          var ys = fwd.filter(function (e) { return e.destination === n.id && pos[e.source]; }).map(function (e) { return pos[e.source].y; });
          bary[n.id] = ys.length ? ys.reduce(function (s, v) { return s + v; }, 0) / ys.length : y + i * (NODE_H + ROW_GAP);
        });
        c.sort(function (p, q) { return bary[p.id] - bary[q.id]; });
        c.forEach(function (n, ri) { pos[n.id] = { x: ci * (NODE_W + COL_GAP), y: y + BAND_TITLE + ri * (NODE_H + ROW_GAP) }; });
        rows = Math.max(rows, c.length);
      }
      var h = BAND_TITLE + rows * NODE_H + (rows - 1) * ROW_GAP + BAND_PAD;
      bands.push({ namespace: b, y: y - BAND_PAD, h: h + BAND_PAD });
      y += h + BAND_GAP;
    });
    return { pos: pos, bands: bands, width: ncols * NODE_W + (ncols - 1) * COL_GAP, height: Math.max(0, y - BAND_GAP) };
  }
  return { size: { NODE_W: NODE_W, NODE_H: NODE_H, COL_GAP: COL_GAP }, layout: layout };
})();
