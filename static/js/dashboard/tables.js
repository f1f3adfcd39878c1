/* SynTrack dashboard · tables: the cycle, session and poll tables and their pagination.
   Every value from the API goes in through textContent or attributes, never innerHTML. */
import { $, NAMES, PAGE_SIZE, state, isBoth, viewProviders, el, icon, isNum, fmtNum, amount, pct, ms, fmtWhen, span, api, q } from "./core.js";
import { OUTCOME_TEXT } from "./status.js";


// ---------------------------------------------------------------- tables
export function renderPager(id, total, page, onPage) {
  var box = $(id);
  box.replaceChildren();
  if (!total) return;
  var pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  var from = (page - 1) * PAGE_SIZE + 1, to = Math.min(total, page * PAGE_SIZE);
  box.appendChild(el("span", { text: "Showing " + from + "–" + to + " of " + total }));
  if (pages === 1) return;
  var buttons = el("div", { className: "pager-buttons", role: "navigation", "aria-label": "Pages" });
  function btn(label, target, opts) {
    var b = el("button", { type: "button", text: label, "aria-label": opts && opts.aria ? opts.aria : "Page " + target });
    if (target === page && !(opts && opts.aria)) b.setAttribute("aria-current", "page");
    if (target < 1 || target > pages || (opts && opts.disabled)) b.disabled = true;
    b.addEventListener("click", function () { onPage(target); });
    return b;
  }
  buttons.appendChild(btn("‹", page - 1, { aria: "Previous page", disabled: page === 1 }));
  var shown = [];
  for (var p = 1; p <= pages; p++) {
    if (p === 1 || p === pages || Math.abs(p - page) <= 1) shown.push(p);
  }
  var last = 0;
  shown.forEach(function (p) {
    if (p - last > 1) buttons.appendChild(el("span", { text: "…", "aria-hidden": "true" }));
    buttons.appendChild(btn(String(p), p));
    last = p;
  });
  buttons.appendChild(btn("›", page + 1, { aria: "Next page", disabled: page === pages }));
  box.appendChild(buttons);
}

// A table wider than its card scrolls inside it (phones): the edge shadow (CSS) and a line
// of text above it say there is more to the side.
export function markOverflow(wrap) {
  var over = wrap.scrollWidth > wrap.clientWidth + 1;
  var hint = wrap.previousElementSibling;
  if (!hint || !hint.classList.contains("scroll-hint")) {
    if (!over) return;
    hint = el("p", { className: "scroll-hint", "aria-hidden": "true", text: "More columns: scroll the table sideways →" });
    wrap.parentNode.insertBefore(hint, wrap);
  }
  hint.classList.toggle("hidden", !over);
}

export function renderTable(name, headers, rowFn, emptyText) {
  var table = $(name + "-table");
  var rows = state.rows[name];
  var pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  if (state.pages[name] > pages) state.pages[name] = pages;
  var page = state.pages[name];
  if (headers) {
    var tr = el("tr", null, headers.map(function (h) {
      return el("th", { scope: "col", className: h.num ? "num" : null, text: h.label });
    }));
    table.tHead.replaceChildren(tr);
  }
  var body = table.tBodies[0];
  body.replaceChildren();
  var cols = table.tHead.rows[0].cells.length;
  if (!rows.length) {
    body.appendChild(el("tr", null, [el("td", { className: "empty", colspan: String(cols), text: emptyText })]));
  }
  rows.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE).forEach(function (r) { body.appendChild(rowFn(r)); });
  markOverflow(table.parentElement);
  renderPager(name + "-pager", rows.length, page, function (target) {
    state.pages[name] = target;
    renderTable(name, null, rowFn, emptyText);
  });
}
function td(content, cls) {
  return el("td", { className: cls || null }, Array.isArray(content) ? content : [content === null || content === undefined ? "—" : String(content)]);
}
function provBadge(pid) { return el("span", { className: "prov-badge " + pid, text: NAMES[pid] || pid }); }
function activeBadge() { return el("span", { className: "badge badge-active badge-small" }, ["Active"]); }

// Cycles: one quota at a time, chosen among the reset windows shown.
export function cycleOptions() {
  var select = $("cycle-quota");
  var choices = [];
  select.replaceChildren();
  viewProviders().forEach(function (pid) {
    var body = state.current[pid];
    var quotas = ((body && body.quotas) || []).filter(function (qq) { return !qq.hidden && qq.kind !== "rolling"; });
    if (!quotas.length) return;
    var parent = select;
    if (isBoth()) { parent = el("optgroup", { label: NAMES[pid] }); select.appendChild(parent); }
    quotas.forEach(function (qq) {
      var value = pid + ":" + qq.key;
      choices.push(value);
      parent.appendChild(el("option", { value: value, text: qq.label }));
    });
  });
  if (choices.indexOf(state.cycleChoice) < 0) state.cycleChoice = choices[0] || "";
  select.value = state.cycleChoice;
  select.disabled = !choices.length;
}

export function loadCycles() {
  cycleOptions();
  if (!state.cycleChoice) {
    state.rows.cycles = [];
    $("cycle-summary").textContent = "";
    drawCycles();
    return Promise.resolve();
  }
  var parts = state.cycleChoice.split(":");
  var pid = parts[0], key = parts.slice(1).join(":");
  return Promise.all([
    api(q("/api/cycles", { provider: pid, quota: key, limit: 200 })),
    api(q("/api/summary", { provider: pid })).catch(function () { return null; })
  ]).then(function (res) {
    if (state.cycleChoice !== pid + ":" + key) return;
    state.rows.cycles = (res[0].cycles || []).map(function (c) { c._unit = (state.quotaInfo[pid + ":" + key] || {}).unit; return c; });
    var summary = res[1] && (res[1].quotas || []).filter(function (s) { return s.key === key; })[0];
    var unit = (state.quotaInfo[pid + ":" + key] || {}).unit;
    $("cycle-summary").textContent = summary
      ? summary.completed_cycles + " completed cycle" + (summary.completed_cycles === 1 ? "" : "s") +
        " · average " + amount(summary.avg_consumed_per_cycle, unit) + " per cycle" +
        " · most " + amount(summary.max_consumed_per_cycle, unit) +
        " · average peak " + pct(summary.avg_peak_percent) +
        (summary.tracking_since ? " · tracked since " + fmtWhen(summary.tracking_since) : "")
      : "";
    drawCycles();
  });
}
export function drawCycles() {
  renderTable("cycles", null, function (c) {
    var start = ms(c.started_at), end = c.ended_at ? ms(c.ended_at) : Date.now();
    var seconds = isNum(c.duration_seconds) ? c.duration_seconds : (end - start) / 1000;
    var rate = isNum(c.rate_per_hour) ? c.rate_per_hour : seconds > 0 && isNum(c.consumed) ? c.consumed / (seconds / 3600) : null;
    var peakPct = isNum(c.peak_used) && c.limit ? " (" + fmtNum((c.peak_used / c.limit) * 100, 1) + "%)" : "";
    return el("tr", null, [
      td(fmtWhen(c.started_at)),
      td(c.active || !c.ended_at ? [activeBadge()] : fmtWhen(c.ended_at)),
      td(span(seconds)),
      td([amount(c.peak_used, c._unit), el("span", { className: "sub", text: peakPct })], "num"),
      td(amount(c.consumed, c._unit), "num"),
      td(isNum(rate) ? amount(rate, c._unit) + "/h" : "—", "num")
    ]);
  }, "No cycles yet for this quota. A cycle is recorded from its first poll.");
}

// The rows of a newest-first list endpoint; with Both, each provider's rows merged by time.
function loadRows(name, limit, timeKey) {
  return api(q("/api/" + name, { provider: state.provider, limit: limit })).then(function (data) {
    var rows = [];
    if (isBoth()) {
      viewProviders().forEach(function (pid) { rows = rows.concat(((data[pid] || {})[name] || [])); });
      rows.sort(function (a, b) { return (ms(b[timeKey]) || 0) - (ms(a[timeKey]) || 0); });
    } else {
      rows = data[name] || [];
    }
    state.rows[name] = rows;
  });
}

export function loadSessions() {
  return loadRows("sessions", 200, "started_at").then(function () { drawSessions(true); });
}
export function drawSessions(withHead) {
  var headers = (isBoth() ? [{ label: "Provider" }] : []).concat([
    { label: "Started" }, { label: "Ended" }, { label: "Duration" }, { label: "Interval", num: true },
    { label: "Polls", num: true }, { label: "Consumption" }
  ]);
  renderTable("sessions", withHead ? headers : null, function (s) {
    var start = ms(s.started_at), end = s.ended_at ? ms(s.ended_at) : Date.now();
    var consumption = el("div", { className: "consumption" });
    Object.keys(s.quotas || {}).forEach(function (key) {
      var info = state.quotaInfo[s.provider + ":" + key] || {};
      var v = s.quotas[key] || {};
      if (info.hidden) return;
      consumption.appendChild(el("span", null, [(info.label || key) + " ", el("b", { text: amount(v.consumed, info.unit) })]));
    });
    if (!consumption.childNodes.length) consumption.appendChild(el("span", { text: "—" }));
    var polls = [String(s.polls_ok || 0) + " ok"];
    if (s.polls_failed) polls.push(el("span", { className: "sub", text: " · " + s.polls_failed + " failed" }));
    var cells = isBoth() ? [td([provBadge(s.provider)])] : [];
    return el("tr", null, cells.concat([
      td(fmtWhen(s.started_at)),
      td(s.active || !s.ended_at ? [activeBadge()] : fmtWhen(s.ended_at)),
      td(span((end - start) / 1000)),
      td(isNum(s.interval_seconds) ? s.interval_seconds + " s" : "—", "num"),
      td(polls, "num"),
      el("td", { className: "wrap" }, [consumption])
    ]));
  }, "No poll sessions yet. `python manage.py poll` opens one per provider.");
}

export function loadPolls() {
  return loadRows("polls", 100, "at").then(function () { drawPolls(true); });
}
export function drawPolls(withHead) {
  var headers = (isBoth() ? [{ label: "Provider" }] : []).concat([
    { label: "Time" }, { label: "Outcome" }, { label: "Latency", num: true }, { label: "Message" }
  ]);
  renderTable("polls", withHead ? headers : null, function (p) {
    var ok = p.outcome === "ok";
    var kind = ok ? (p.drift ? "drift" : "ok") : p.outcome === "drift" ? "drift" : "error";
    var outcome = el("span", { className: "badge badge-" + kind }, [
      icon(ok && !p.drift ? "check" : kind === "drift" ? "alert" : "x-circle"),
      (OUTCOME_TEXT[p.outcome] || p.outcome) + (ok && p.drift ? " · drift" : "")
    ]);
    var cells = isBoth() ? [td([provBadge(p.provider)])] : [];
    return el("tr", null, cells.concat([
      td(fmtWhen(p.at, "datetime")),
      td([outcome]),
      td(isNum(p.latency_ms) ? fmtNum(p.latency_ms, 0) + " ms" : "—", "num"),
      td(p.message || "", "wrap")
    ]));
  }, "No poll attempts recorded yet.");
}
