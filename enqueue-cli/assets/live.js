/* live.js -- the live event view of `lanework dashboard`: appends the events
 * of the page's stream (server-sent events) to its table, newest first.
 * Text only (textContent): an event's data never becomes markup. The page
 * works without this script (it shows the events of when it was loaded). */
(function () {
  'use strict';
  var table = document.getElementById('live');
  if (!table || !window.EventSource) return;
  var tbody = table.tBodies[0];
  var tenant = table.getAttribute('data-tenant');
  var state = document.getElementById('live-state');
  var es = new EventSource(table.getAttribute('data-stream'));
  function say(text, cls) {
    if (state) { state.textContent = text; state.className = cls; }
  }
  es.onopen = function () { say('live', 'on'); };
  es.onerror = function () { say('reconnecting...', 'off'); };
  es.onmessage = function (m) {
    var e;
    try { e = JSON.parse(m.data); } catch (x) { return; }
    var tr = document.createElement('tr');
    tr.className = 'new';
    function cell(text, cls) {
      var td = document.createElement('td');
      if (text !== null && text !== undefined) td.textContent = String(text);
      if (cls) td.className = cls;
      tr.appendChild(td);
      return td;
    }
    cell(e.ts);
    cell(e.type);
    var td = cell(null);
    if (e.job) {
      var a = document.createElement('a');
      a.className = 'id';
      a.href = '/t/' + encodeURIComponent(tenant) + '/job/' + encodeURIComponent(e.job);
      a.textContent = e.job;
      td.appendChild(a);
    }
    cell(e.attempt, 'n');
    cell(e.worker);
    var data = e.data === null || e.data === undefined ? '' : JSON.stringify(e.data);
    if (data.length > 300) data = data.slice(0, 297) + '...';
    cell(data, 'data');
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > 200) tbody.deleteRow(tbody.rows.length - 1);
  };
})();
