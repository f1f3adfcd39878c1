/* SynTrack dashboard · main: provider tabs, range buttons, the refresh loop (with back-off)
   and setup. The entry module: the page loads this one, and it imports the rest. */
import { $, CONFIG, OPTIONS, ready, state, save, report, saveSettings } from "./core.js";
import { renderTabs, pressed, setUpdated, loadProviders } from "./status.js";
import { tickLive, loadCurrent } from "./cards.js";
import { renderHistory, destroyCharts, loadHistory } from "./chart.js";
import { loadInsights } from "./insights.js";
import { loadCycles, loadSessions, drawSessions, loadPolls, drawPolls, markOverflow } from "./tables.js";
import { setupPassword, setupTimezone } from "./dialogs.js";
import { setupPollNow } from "./pollnow.js";
import { loadAlerts } from "./alerts.js";

var timer = null;
function baseDelay() {
  var s = Number(CONFIG.poll_interval) || 60;
  return Math.min(Math.max(s, 15), 300) * 1000;
}
function schedule() {
  window.clearTimeout(timer);
  var delay = baseDelay();
  if (state.failures) delay = Math.min(delay * Math.pow(2, state.failures), 10 * 60e3);
  // A hidden tab backs off (2×, 4×, … up to 16×) instead of polling at full speed.
  if (document.hidden) delay = Math.min(delay * Math.pow(2, Math.min(state.hiddenRounds + 1, 4)), 30 * 60e3);
  timer = window.setTimeout(function () {
    if (document.hidden) state.hiddenRounds += 1;
    refreshAll();
  }, delay);
}

function refreshAll() {
  // A refresh asked for while one runs (a new timezone or tab) runs right after it:
  // the running one may already have drawn the cards with the old settings.
  if (state.refreshing) { state.refreshAgain = true; return Promise.resolve(); }
  state.refreshAgain = false;
  state.refreshing = true;
  // Mirrored on the page (nothing global to read): tests wait on it.
  document.body.dataset.refreshing = "true";
  var btn = $("refresh-btn");
  btn.classList.add("spinning");
  var started = Date.now();
  return loadCurrent()
    .then(function () {
      return Promise.allSettled([
        loadProviders(), loadHistory(), loadInsights(), loadCycles(), loadSessions(), loadPolls(), loadAlerts()
      ]);
    })
    .then(function (results) {
      results.forEach(function (r) { if (r.status === "rejected") report(r.reason); });
      state.failures = 0;
      setUpdated(true);
    })
    .catch(function (err) {
      report(err);
      state.failures = Math.min(state.failures + 1, 5);
      setUpdated(false);
      return loadProviders().catch(function () { /* the server is down */ });
    })
    .then(function () {
      state.refreshing = false;
      document.body.dataset.refreshing = "false";
      state.lastRefresh = Date.now();
      document.body.dataset.loaded = "true";
      window.setTimeout(function () { if (!state.refreshing) btn.classList.remove("spinning"); }, Math.max(0, 500 - (Date.now() - started)));
      if (state.refreshAgain) refreshAll();
      else schedule();
    });
}

// ---------------------------------------------------------------- wiring
function switchProvider(pid) {
  if (pid === state.provider || OPTIONS.indexOf(pid) < 0) return;
  state.provider = pid;
  save("provider", pid);
  var url = new URL(window.location.href);
  url.searchParams.delete("provider");
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  state.pages = { cycles: 1, sessions: 1, polls: 1 };
  state.history = null;
  destroyCharts();
  renderTabs();
  $("quota-groups").setAttribute("aria-busy", "true");
  refreshAll();
}

function setup() {
  document.querySelectorAll("#provider-tabs [data-provider]").forEach(function (b) {
    b.addEventListener("click", function () { switchProvider(b.dataset.provider); });
    b.addEventListener("keydown", function (e) {
      if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
      var i = OPTIONS.indexOf(state.provider) + (e.key === "ArrowRight" ? 1 : -1);
      var next = OPTIONS[(i + OPTIONS.length) % OPTIONS.length];
      switchProvider(next);
      var nb = document.querySelector('#provider-tabs [data-provider="' + next + '"]');
      if (nb) nb.focus();
    });
  });
  document.querySelectorAll("#chart-range [data-range]").forEach(function (b) {
    b.addEventListener("click", function () {
      state.chartRange = b.dataset.range;
      state.chartRangeChosen = true;
      save("chartRange", state.chartRange);
      pressed("chart-range", state.chartRange);
      loadHistory().catch(report);
    });
  });
  document.querySelectorAll("#insights-range [data-range]").forEach(function (b) {
    b.addEventListener("click", function () {
      state.insightsRange = b.dataset.range;
      save("insightsRange", state.insightsRange);
      pressed("insights-range", state.insightsRange);
      loadInsights().catch(report);
    });
  });
  $("show-hidden-insights").addEventListener("click", function () {
    saveSettings({ hidden_insights: [] }).then(loadInsights).catch(report);
  });
  $("cycle-quota").addEventListener("change", function (e) {
    state.cycleChoice = e.target.value;
    save("cycleQuota", state.cycleChoice);
    state.pages.cycles = 1;
    loadCycles().catch(report);
  });
  $("refresh-btn").addEventListener("click", function () { refreshAll(); });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { schedule(); return; }
    state.hiddenRounds = 0;
    if (Date.now() - state.lastRefresh > baseDelay() / 2) refreshAll();
    else schedule();
  });
  document.addEventListener("syntrack:theme", function () {
    destroyCharts();
    renderHistory();
  });
  setupPassword();
  setupTimezone(refreshAll);
  setupPollNow(refreshAll);
  if (state.chartRangeChosen) pressed("chart-range", state.chartRange); // else chart.js picks one
  pressed("insights-range", state.insightsRange);
  renderTabs();
  drawSessions(true);
  drawPolls(true);
  window.addEventListener("resize", function () { document.querySelectorAll(".table-wrap").forEach(markOverflow); });
  window.setInterval(tickLive, 1000);
  refreshAll();
}

// Modules run once the document is parsed: the page is there to wire up.
if (ready) setup();
