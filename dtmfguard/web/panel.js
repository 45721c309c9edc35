// SPDX-License-Identifier: GPL-2.0-or-later
// The agent payment panel: follows one call's masked feed (Server-Sent Events) and shows the field being
// keyed, a dot per digit, brand, last 4, each field's validity and the gateway's answer.  The feed never
// carries a digit beyond the last 4, and this page shows only what the feed carries.
//
// Open as /panel/#call=<handle>&ticket=<ticket> (the fragment never reaches a server or its logs).  A
// ticket is single-use: every stream hands the page a fresh one ("ticket" event), which the page uses to
// reconnect with the id of the last event it saw, so a reconnect loses and repeats nothing.
(function () {
  "use strict";
  var params = new URLSearchParams(location.hash.slice(1));
  var call = params.get("call") || "";
  var ticket = params.get("ticket") || "";
  var base = params.get("base") || "";
  if (history.replaceState) { history.replaceState(null, "", location.pathname + "#call=" + encodeURIComponent(call)); }
  var $ = function (id) { return document.getElementById(id); };
  var state = { fields: {}, order: [], active: null, lastId: 0, ended: false, source: null, retries: 0,
                applied: 0, connects: 0 };
  $("call-handle").textContent = call || "-";

  function setStatus(text, kind) { var s = $("status"); s.textContent = text; s.dataset.state = kind || text; }
  function showError(text) { var e = $("error"); e.textContent = text; e.hidden = !text; }
  function fieldRow(name, label) {
    if (!state.fields[name]) {
      var row = document.createElement("div");
      row.className = "field"; row.dataset.field = name;
      var n = document.createElement("span"); n.className = "name"; n.textContent = label || name;
      var d = document.createElement("span"); d.className = "dots";
      var m = document.createElement("span"); m.className = "mark";
      row.appendChild(n); row.appendChild(d); row.appendChild(m);
      $("fields").appendChild(row);
      state.fields[name] = row; state.order.push(name);
    }
    return state.fields[name];
  }
  function dots(name, count) {
    var row = fieldRow(name);
    row.querySelector(".dots").textContent = new Array(Math.max(0, count | 0) + 1).join("\u2022");
    row.dataset.digits = String(count | 0);
  }
  function activate(name) {
    state.order.forEach(function (f) { state.fields[f].classList.toggle("active", f === name); });
    state.active = name;
  }

  var handlers = {
    session_started: function (d) {
      (d.fields || []).forEach(function (f) { fieldRow(f, f.replace(/_/g, " ")); });
      if (d.amount) { $("amount").textContent = (d.amount / 100).toFixed(2) + " " + (d.currency || ""); }
      setStatus("collecting"); showError("");
    },
    field_started: function (d) {
      fieldRow(d.field, d.label); dots(d.field, 0); activate(d.field);
      var row = state.fields[d.field]; delete row.dataset.valid;
      if (d.attempt > 1) { showError(d.label + ": attempt " + d.attempt + " of " + d.max_attempts); }
    },
    field_progress: function (d) { dots(d.field, d.digits); activate(d.field); },
    field_cleared: function (d) { dots(d.field, 0); },
    field_complete: function (d) {
      var row = fieldRow(d.field); row.dataset.valid = d.valid ? "true" : "false";
      if (d.brand) { $("brand").textContent = d.brand; }
      if (d.last4 && /^[0-9]{4}$/.test(d.last4)) { $("last4").textContent = "\u2022\u2022\u2022\u2022 " + d.last4; }
      if (!d.valid && d.reason) { showError(d.field.replace(/_/g, " ") + ": " + d.reason); }
      if (d.valid) { showError(""); }
    },
    field_timeout: function (d) { showError(d.field.replace(/_/g, " ") + ": nothing keyed in time"); },
    limit_refused: function (d) { showError(d.reason || "over the agent's limit"); },
    approval_required: function (d) { setStatus("awaiting approval", "submitting"); },
    submitting: function (d) { activate(null); setStatus("submitting"); $("gateway").textContent = "sent to " + (d.gateway || "gateway"); },
    gateway_result: function (d) {
      var text = d.status + (d.authorisation ? " (" + d.authorisation + ")" : "") + (d.message ? ": " + d.message : "");
      $("gateway").textContent = text;
    },
    audit_error: function (d) { showError(d.reason); },
    session_ended: function (d) {
      var ok = d.outcome === "completed";
      setStatus(d.outcome.replace(/_/g, " "), ok ? "completed" : "failed");
      if (!ok && d.reason) { showError(d.reason); }
    },
    call_state: function (d) { if (d.state === "connected" && $("status").dataset.state === "connecting") { setStatus("call connected", "idle"); } },
    call_ended: function (d) {
      state.ended = true;
      if (d.reason === "worker-lost") { setStatus("call lost", "lost"); showError("the guard lost this call"); }
      else if (["collecting", "connecting", "idle", "submitting"].indexOf($("status").dataset.state) >= 0) { setStatus("call ended", "failed"); }
    }
  };

  function connect() {
    if (!call || !ticket) { setStatus("no ticket", "lost"); showError("open this panel with #call=<handle>&ticket=<ticket>"); return; }
    var url = base + "/v1/calls/" + encodeURIComponent(call) + "/feed?ticket=" + encodeURIComponent(ticket) +
      (state.lastId ? "&last_event_id=" + state.lastId : "");
    ticket = "";  // single use
    var es = new EventSource(url);
    state.source = es;
    state.connects += 1;
    document.body.dataset.connects = String(state.connects);
    Object.keys(handlers).forEach(function (kind) {
      es.addEventListener(kind, function (ev) {
        var id = parseInt(ev.lastEventId, 10);
        if (id && id <= state.lastId) { return; }  // never apply an event twice
        if (id) { state.lastId = id; }
        state.retries = 0;
        state.applied += 1;
        try { handlers[kind](JSON.parse(ev.data)); } catch (e) { showError("bad feed event"); }
        document.body.dataset.lastEventId = String(state.lastId);
        document.body.dataset.applied = String(state.applied);
        if (kind === "call_ended") { es.close(); }
      });
    });
    es.addEventListener("ticket", function (ev) { ticket = JSON.parse(ev.data).ticket; });
    es.onerror = function () {
      // the stream ended or broke: reconnect with the fresh ticket and the last id seen (the browser's own
      // retry would reuse the spent ticket in the URL)
      es.close();
      if (state.ended) { return; }
      if (!ticket || state.retries > 20) { setStatus("disconnected", "lost"); showError("feed lost: reopen the panel"); return; }
      state.retries += 1;
      setTimeout(connect, Math.min(5000, 250 * state.retries));
    };
  }
  window.dtmfguardPanel = { state: state };
  connect();
})();
