/* epochd dashboard: sortable tables and live updates. The pages work without
 * it (server-side sorting links, a reload shows new numbers); this only
 * makes them nicer. No framework, no build step: served as it is here. */
'use strict';

(function () {
  var REFRESH_MS = 2000; /* the pages are polled at most this often */

  /* ---- sorting ---- */

  /* The sort key of a cell: data-v if the server gave one, else its text read
   * as a number, a duration (42.0s, 4m12s, 3h07m, 2d04h), "a/b" (a), or text.
   * Empty cells and "-" sort last either way. */
  function cellKey(td) {
    if (!td) return null;
    var v = td.getAttribute('data-v');
    var t = (v !== null ? v : td.textContent).trim();
    if (t === '' || t === '-') return null;
    var m = /^(\d+)d(\d+)h$/.exec(t);
    if (m) return +m[1] * 86400 + +m[2] * 3600;
    m = /^(\d+)h(\d+)m$/.exec(t);
    if (m) return +m[1] * 3600 + +m[2] * 60;
    m = /^(\d+)m(\d+)s$/.exec(t);
    if (m) return +m[1] * 60 + +m[2];
    m = /^(\d+(?:\.\d+)?)s$/.exec(t);
    if (m) return +m[1];
    m = /^(-?[\d,]+(?:\.\d+)?(?:e[-+]?\d+)?)\s*(?:%|\/\d+)?$/i.exec(t);
    if (m) return parseFloat(m[1].replace(/,/g, ''));
    return t.toLowerCase();
  }

  function compareKeys(a, b) {
    if (a === null || b === null) return (a === null) - (b === null);
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
  }

  function sortTable(table, col, dir) {
    var body = table.tBodies[0];
    if (!body) return;
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (r, i) { return { r: r, k: cellKey(r.cells[col]), i: i }; });
    keyed.sort(function (x, y) {
      if (x.k === null || y.k === null) {
        var n = (x.k === null) - (y.k === null);
        if (n) return n; /* missing values last in both directions */
        return x.i - y.i;
      }
      return dir * compareKeys(x.k, y.k) || x.i - y.i;
    });
    keyed.forEach(function (e) { body.appendChild(e.r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (i === col) th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    });
    table.setAttribute('data-sort-col', col);
    table.setAttribute('data-sort-dir', dir);
  }

  function makeSortable(table) {
    if (!table.tHead || table.getAttribute('data-sortable-ready')) return;
    table.setAttribute('data-sortable-ready', '1');
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.classList.add('sort');
      th.setAttribute('title', 'sort by ' + th.textContent.trim());
      th.addEventListener('click', function (ev) {
        ev.preventDefault(); /* the header's link is the no-JavaScript fallback */
        var cur = +table.getAttribute('data-sort-col');
        var dir = table.hasAttribute('data-sort-col') && cur === i ? -table.getAttribute('data-sort-dir') : 1;
        sortTable(table, i, dir);
        remember(table);
      });
    });
  }

  /* A table's sort survives the live updates that replace it. */
  var sortState = {};
  function remember(table) {
    if (table.id) sortState[table.id] = [+table.getAttribute('data-sort-col'), +table.getAttribute('data-sort-dir')];
  }
  function restore(root) {
    root.querySelectorAll('table.sortable').forEach(function (t) {
      makeSortable(t);
      var s = t.id && sortState[t.id];
      if (s) sortTable(t, s[0], s[1]);
    });
  }

  /* ---- live updates ---- */

  var refreshes = 0;
  function stamp(text, bad) {
    var el = document.getElementById('updated');
    if (!el) return;
    el.textContent = text;
    el.classList.toggle('stale', !!bad);
  }

  function poll(el) {
    var url = el.getAttribute('data-live');
    var timer = null;
    function next() { timer = setTimeout(tick, REFRESH_MS); }
    function tick() {
      if (document.hidden) { next(); return; }
      fetch(url, { credentials: 'same-origin', cache: 'no-store' }).then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.text();
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.getElementById(el.id);
        if (!fresh) throw new Error('no #' + el.id + ' in the update');
        var open = {};
        el.querySelectorAll('details[id]').forEach(function (d) { open[d.id] = d.open; });
        var node = document.importNode(fresh, true);
        el.replaceWith(node);
        node.querySelectorAll('details[id]').forEach(function (d) { if (d.id in open) d.open = open[d.id]; });
        el = node;
        restore(el);
        refreshes++;
        document.body.setAttribute('data-refreshes', refreshes);
        stamp('live \u00b7 updated ' + new Date().toLocaleTimeString(), false);
        if (el.getAttribute('data-active') === '0') { stamp('finished \u00b7 no more updates', false); return; }
        next();
      }).catch(function (e) {
        stamp('cannot reach the service (' + e.message + '); retrying', true);
        next();
      });
    }
    next();
    return function () { clearTimeout(timer); };
  }

  /* ---- copy buttons beside CLI commands ---- */

  function copyButtons() {
    document.querySelectorAll('button.copy[data-copy]').forEach(function (b) {
      b.hidden = false;
      b.addEventListener('click', function () {
        var text = b.getAttribute('data-copy');
        var done = function () { b.textContent = 'copied'; setTimeout(function () { b.textContent = 'copy'; }, 1500); };
        if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, function () {});
      });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    restore(document);
    copyButtons();
    document.querySelectorAll('[data-live]').forEach(function (el) {
      if (el.getAttribute('data-active') !== '0') {
        poll(el);
        stamp('live \u00b7 every ' + REFRESH_MS / 1000 + ' s', false);
      }
    });
  });
})();
