// The dev server's live page: events and rejected requests from GET /_dev/live
// (Server-Sent Events), newest first. Plain DOM, no dependencies. Everything from the
// server is user data: it only ever goes into textContent and title, never into HTML.
"use strict";

(function () {
  var MAX_ROWS = 1000;
  var byId = function (id) { return document.getElementById(id); };
  var eventsBody = document.querySelector("#events tbody");
  var rejectionsBody = document.querySelector("#rejections tbody");
  var typeFilter = byId("filter-type");
  var userFilter = byId("filter-user");
  var eventFilter = byId("filter-event");
  var rejectedFilter = byId("filter-rejected");
  var detail = byId("detail");
  var server = null;
  var selected = null;

  function text(value) {
    if (value === undefined || value === null) { return ""; }
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function clock(iso) {
    return typeof iso === "string" && iso.length >= 23 ? iso.slice(11, 23) : "--:--:--.---";
  }

  function label(event) {
    if (typeof event.event === "string") { return event.event; }
    if (typeof event.name === "string") { return event.name; }
    if (event.groupId !== undefined && event.groupId !== null) { return "groupId=" + text(event.groupId); }
    if (event.previousId !== undefined && event.previousId !== null) { return "previousId=" + text(event.previousId); }
    return "";
  }

  function details(event) {
    var parts = [];
    ["properties", "traits"].forEach(function (key) {
      var value = event[key];
      if (value && typeof value === "object" && Object.keys(value).length) { parts.push(JSON.stringify(value)); }
    });
    return parts.join(" ");
  }

  function row(cells, data) {
    var tr = document.createElement("tr");
    cells.forEach(function (value) {
      var td = document.createElement("td");
      td.textContent = value;
      td.title = value;
      tr.appendChild(td);
    });
    tr.classList.add("fresh");
    tr.addEventListener("click", function () { show(tr, data); });
    return tr;
  }

  function prepend(body, tr) {
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > MAX_ROWS) { body.deleteRow(body.rows.length - 1); }
  }

  function show(tr, data) {
    if (selected) { selected.classList.remove("selected"); }
    selected = tr;
    tr.classList.add("selected");
    byId("detail-hint").hidden = true;
    detail.textContent = JSON.stringify(data, null, 2);
  }

  function addTypeOption(type) {
    if (!type) { return; }
    for (var i = 0; i < typeFilter.options.length; i++) {
      if (typeFilter.options[i].value === type) { return; }
    }
    var option = document.createElement("option");
    option.value = type;
    option.textContent = type;
    typeFilter.appendChild(option);
  }

  function addEvent(event) {
    var user = text(event.userId);
    var who = user !== "" ? user : "anon " + text(event.anonymousId);
    var tr = row([clock(event.receivedAt), text(event.type), who, label(event), details(event)], event);
    tr.className = "event fresh";
    tr.dataset.type = text(event.type);
    tr.dataset.user = (user + "\n" + text(event.anonymousId)).toLowerCase();
    tr.dataset.name = label(event).toLowerCase();
    addTypeOption(text(event.type));
    filterRow(tr);
    prepend(eventsBody, tr);
  }

  function addRejection(rejection) {
    var status = rejection.status === null ? "no answer" : String(rejection.status);
    var route = text(rejection.method) + " " + text(rejection.path);
    var tr = row([clock(rejection.time), status, route, text(rejection.reason), text(rejection.write_key)], rejection);
    tr.className = "rejection fresh";
    prepend(rejectionsBody, tr);
  }

  function filterRow(tr) {
    var type = typeFilter.value;
    var user = userFilter.value.trim().toLowerCase();
    var name = eventFilter.value.trim().toLowerCase();
    tr.hidden = (type !== "" && tr.dataset.type !== type) ||
      (user !== "" && tr.dataset.user.indexOf(user) < 0) ||
      (name !== "" && tr.dataset.name.indexOf(name) < 0);
  }

  function refresh() {
    Array.prototype.forEach.call(eventsBody.rows, filterRow);
    var shown = eventsBody.querySelectorAll("tr:not([hidden])").length;
    var total = eventsBody.rows.length;
    byId("event-count").textContent = shown === total ? String(total) : shown + " of " + total;
    byId("rejection-count").textContent = String(rejectionsBody.rows.length);
    byId("no-events").hidden = total > 0;
    byId("no-rejections").hidden = rejectionsBody.rows.length > 0;
    byId("rejections-box").hidden = !rejectedFilter.checked;
  }

  function clearPage() {
    eventsBody.textContent = "";
    rejectionsBody.textContent = "";
    detail.textContent = "";
    byId("detail-hint").hidden = false;
    selected = null;
    refresh();
  }

  function hello(message) {
    if (server !== null && server !== message.server) { clearPage(); }
    server = message.server;
    byId("url").textContent = window.location.origin;
    byId("keys").textContent = (message.write_keys || []).join(", ");
  }

  function receive(message) {
    if (message.kind === "event") { addEvent(message.event); }
    else if (message.kind === "rejection") { addRejection(message.rejection); }
    else if (message.kind === "reset") { clearPage(); }
    else if (message.kind === "hello") { hello(message); }
  }

  function setStatus(state, words) {
    var status = byId("status");
    status.dataset.state = state;
    status.textContent = words;
  }

  var pending = false;
  function later() {
    if (pending) { return; }
    pending = true;
    window.setTimeout(function () { pending = false; refresh(); }, 30);
  }

  function connect() {
    var source = new EventSource("/_dev/live");
    source.onopen = function () { setStatus("live", "live: new events appear as they arrive"); };
    source.onerror = function () { setStatus("connecting", "disconnected: reconnecting\u2026"); };
    source.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (err) { return; }
      receive(data);
      later();
    };
  }

  [typeFilter, userFilter, eventFilter, rejectedFilter].forEach(function (input) {
    input.addEventListener("input", refresh);
    input.addEventListener("change", refresh);
  });
  byId("filters").addEventListener("submit", function (e) { e.preventDefault(); });
  byId("clear").addEventListener("click", clearPage);
  refresh();
  connect();
})();
