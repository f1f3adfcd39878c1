/* SynTrack dashboard · status: the header (provider tabs, range buttons, last-updated dot) and the failed-poll / drift banners.
   Every value from the API goes in through textContent or attributes, never innerHTML. */
import { $, NAMES, PROVIDERS, state, zone, zoneLabel, isBoth, viewProviders, el, icon, ms, fmtWhen, fmtSmart, fmtShort, api } from "./core.js";

// ---------------------------------------------------------------- header
export function renderTabs() {
  document.querySelectorAll("#provider-tabs [data-provider]").forEach(function (b) {
    var on = b.dataset.provider === state.provider;
    b.setAttribute("aria-selected", on ? "true" : "false");
    b.tabIndex = on ? 0 : -1;
  });
  var sub = isBoth() ? "All your providers’ quotas" : NAMES[state.provider] + " quotas";
  $("page-sub").textContent = sub + ": usage, resets and trends, in " + zone().replace(/_/g, " ") + " time.";
  $("tz-label").textContent = zoneLabel();
}

export function pressed(groupId, value) {
  document.querySelectorAll("#" + groupId + " [data-range]").forEach(function (b) {
    b.setAttribute("aria-pressed", b.dataset.range === value ? "true" : "false");
  });
}

// The header's dot and "Updated" time tell how fresh the data on screen is: the last
// successful poll of the providers shown (the oldest of them, when both are), not when this
// browser last fetched. Red when a shown provider's last poll failed, amber when its last
// success is older than two poll intervals (the server's `stale`), green otherwise.
function freshness() {
  var byId = {};
  (state.providers || []).forEach(function (p) { byId[p.id] = p; });
  var shown = viewProviders().map(function (pid) { return byId[pid]; }).filter(Boolean);
  var failed = shown.filter(function (p) { return failedPoll(p.last_status); });
  var successes = shown.map(function (p) { return ms(p.last_success_at); });
  var oldest = successes.some(function (t) { return t === null; }) ? null : Math.min.apply(null, successes);
  var level = failed.length ? "failed" : !shown.length || oldest === null ? "none" : shown.some(function (p) { return p.stale; }) ? "stale" : "ok";
  return { level: level, failed: failed, oldest: shown.length ? oldest : null, shown: shown };
}

function sentence(text) {
  return text.charAt(0).toUpperCase() + text.slice(1).replace(/([^.!?])$/, "$1.");
}

// A storage error is no failed poll: the answers were fetched and written late (quotas/backlog.py).
function failedPoll(outcome) {
  return Boolean(outcome) && outcome !== "ok" && outcome !== "storage_error";
}

export function setUpdated(reachable) {
  var dot = $("status-dot");
  var label = $("last-updated");
  if (!reachable) {
    dot.className = "status-dot stale";
    dot.dataset.level = "unreachable";
    label.textContent = state.lastOk ? "Server unreachable since " + fmtWhen(state.lastOk, "time") : "Cannot reach the server";
    label.title = "Retrying with back-off";
    return;
  }
  state.lastOk = Date.now();
  var f = freshness();
  var when = f.oldest === null ? null : fmtShort(f.oldest);
  var text;
  if (f.level === "failed") {
    var who = isBoth() && f.failed.length === 1 ? NAMES[f.failed[0].id] + " poll failed" : "Poll failed";
    text = who + (when ? " · updated " + when : "");
  } else if (f.level === "stale") {
    text = "Updated " + when + " · stale";
  } else if (f.level === "ok") {
    var sameDay = fmtShort(f.oldest) === fmtWhen(f.oldest, "time");
    text = "Updated " + (sameDay ? fmtWhen(f.oldest, "seconds") : when);
  } else {
    text = "No successful poll yet";
  }
  dot.className = "status-dot " + f.level;
  dot.dataset.level = f.level;
  label.textContent = text;
  label.title = f.shown.map(function (p) {
    return NAMES[p.id] + ": last successful poll " + (p.last_success_at ? fmtWhen(p.last_success_at, "datetime") : "never") +
      (failedPoll(p.last_status) ? "; the last one failed (" + (OUTCOME_TEXT[p.last_status] || p.last_status) + ")" : "") +
      (p.stale && p.last_success_at ? "; older than two poll intervals" : "");
  }).join(" · ");
}

// ---------------------------------------------------------------- banners
export var OUTCOME_TEXT = {
  ok: "OK",
  drift: "Schema drift",
  unauthorized: "Unauthorized",
  rate_limited: "Rate-limited",
  server_error: "Server error",
  network_error: "Network error",
  invalid_response: "Invalid response",
  storage_error: "Storage error"
};
export var OUTCOME_HINT = {
  unauthorized: "Check the API key in the configuration.",
  rate_limited: "The provider asked SynTrack to slow down; polling backs off by itself.",
  server_error: "The provider is having trouble; polling retries with back-off.",
  network_error: "The provider could not be reached; polling retries with back-off.",
  invalid_response: "The provider answered with something SynTrack cannot read.",
  drift: "The answer carried no usable quota. Its raw body is kept; `manage.py reparse` rebuilds readings after an update."
};

export function renderBanners(providerList) {
  var box = $("banners");
  box.replaceChildren();
  var statusById = {};
  (providerList || []).forEach(function (p) { statusById[p.id] = p; });
  PROVIDERS.forEach(function (p) {
    var cur = state.current[p.id];
    var info = statusById[p.id] || {};
    var last = cur && cur.last_poll ? cur.last_poll : null;
    var outcome = last ? last.outcome : info.last_status;
    var at = last ? last.at : info.last_poll_at;
    // A storage error is dated when the database first refused a write, before the answers then
    // written late: /api/providers keeps the last day's, as it is rarely the latest attempt.
    var refused = info.last_storage_error ||
      (outcome === "storage_error" ? { at: at, message: last ? last.message : "" } : null);
    if (failedPoll(outcome)) {
      var text = [el("strong", { text: p.name + ": the last poll failed (" + (OUTCOME_TEXT[outcome] || outcome) + ")" })];
      text.push(" at " + fmtSmart(at) + ". ");
      if (last && last.message) text.push(el("span", { className: "sub", text: sentence(last.message) + " " }));
      text.push(OUTCOME_HINT[outcome] || "");
      if (cur && cur.captured_at) text.push(" Showing the last good readings, from " + fmtSmart(cur.captured_at) + ".");
      box.appendChild(el("div", { className: "banner banner-error", role: "alert", dataset: { banner: p.id } }, [
        icon("x-circle"), el("div", { className: "banner-text" }, text)
      ]));
    } else if (cur && cur.drift) {
      box.appendChild(el("div", { className: "banner banner-warning", role: "status", dataset: { banner: p.id } }, [
        icon("alert"),
        el("div", { className: "banner-text" }, [
          el("strong", { text: p.name + ": the answer has changed shape (schema drift). " }),
          (last && last.message ? last.message + ". " : "") +
            "Known quotas are still tracked; the raw body is kept for `manage.py reparse`."
        ])
      ]));
    } else if (refused) {
      box.appendChild(el("div", { className: "banner banner-warning", role: "status", dataset: { banner: p.id } }, [
        icon("alert"),
        el("div", { className: "banner-text" }, [
          el("strong", { text: p.name + ": SynTrack's own database refused writes for a while" }),
          " (" + fmtSmart(refused.at) + "). ",
          el("span", { className: "sub", text: refused.message ? sentence(refused.message) + " " : "" }),
          "Polling went on; no answer was blamed on the provider."
        ])
      ]));
    }
  });
}

export function loadProviders() {
  return api("/api/providers").then(function (d) {
    state.providers = d.providers || [];
    renderBanners(state.providers);
  })
    .catch(function (e) { renderBanners([]); throw e; });
}
