/* SynTrack dashboard · chart: the usage chart (Chart.js, vendored), one per provider shown.
   Every value from the API goes in through textContent or attributes, never innerHTML. */
import { $, NAMES, state, REDUCED_MOTION, RANGES_MS, isBoth, viewProviders, byProvider, el, isNum, fmtNum, amount, dateFmt, ms, fmtWhen, api, q } from "./core.js";
import { pressed } from "./status.js";

// ---------------------------------------------------------------- chart
// Chart.js is the vendored UMD build, a classic script that runs before the modules
// and leaves its constructor on window: this is the one place that reads it.
var Chart = window.Chart || null;
var charts = {};
// One colour per quota, the same on every tab, range and refresh: the palette slot is a
// hash of the quota's key, never its position in the series list. Light and dark hold the
// same hues (index for index), each shade tuned for its background. SEED is chosen so the
// ten quota keys SynTrack knows (synthetic and zai adapters) all land on different slots.
var PALETTE = {
  //      teal       lime       indigo     slate      cyan       fuchsia    green      orange     pink       blue       violet     amber
  light: ["#0b8479", "#65a30d", "#4f46e5", "#64748b", "#0891b2", "#c026d3", "#15803d", "#ea580c", "#d9467a", "#2f6fde", "#8b5cf6", "#e08a00"],
  dark: ["#3fd6c3", "#a3e635", "#818cf8", "#94a3b8", "#22d3ee", "#e879f9", "#4ade80", "#fb923c", "#f472b6", "#60a5fa", "#a78bfa", "#fbbf24"]
};
var SEED = 120;
// FNV-1a (32-bit) of the key, from SEED.
function keyHash(key) {
  var h = SEED;
  for (var i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}
function colorSlot(key) { return keyHash(String(key)) % PALETTE.light.length; }
// A percent drop bigger than this from the series' previous reading is a reset.
var RESET_DROP = 1;

function theme() { return document.documentElement.getAttribute("data-theme") === "dark" ? "dark" : "light"; }
function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
function alpha(hex, a) {
  var n = parseInt(hex.slice(1), 16);
  return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
}

// Chart points from the API's [time, percent, used] rows. A null point goes in across each
// poll gap so the line breaks there (spanGaps is off). A reading whose percent dropped by
// more than RESET_DROP from the previous reading of the same series is marked a reset
// (`reset: true`, `from`: the percent before), gap or no gap in between.
function withGaps(points, gaps) {
  var spans = (gaps || []).map(function (g) { return [ms(g[0]), ms(g[1])]; });
  var out = [];
  var prev = null;
  var prevY = null;
  (points || []).forEach(function (p) {
    var t = ms(p[0]);
    if (t === null) return;
    if (prev !== null && spans.some(function (g) { return g[0] < t && g[1] > prev; })) {
      out.push({ x: (prev + t) / 2, y: null });
    }
    var point = { x: t, y: isNum(p[1]) ? p[1] : null, used: p[2] };
    if (isNum(point.y)) {
      if (isNum(prevY) && prevY - point.y > RESET_DROP) {
        point.reset = true;
        point.from = prevY;
      }
      prevY = point.y;
    }
    out.push(point);
    prev = t;
  });
  return out;
}
function isReset(ctx) { return !!(ctx && ctx.raw && ctx.raw.reset); }

// A y range with head-room and round ticks: [max, step].
function yScale(datasets) {
  var max = 0;
  datasets.forEach(function (ds) { ds.data.forEach(function (p) { if (isNum(p.y) && p.y > max) max = p.y; }); });
  var raw = Math.max(max * 1.15, 10);
  var step = raw <= 10 ? 2 : raw <= 25 ? 5 : raw <= 60 ? 10 : 20;
  var top = Math.ceil(raw / step) * step;
  if (max <= 100 && top > 100) { top = 100; step = 20; }
  return [top, step];
}

// Minutes the chosen zone is ahead of UTC (now), so ticks fall on local hours and midnights.
function zoneOffsetMinutes() {
  var parts = {};
  dateFmt("parts").formatToParts(new Date()).forEach(function (p) { parts[p.type] = p.value; });
  var asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute);
  return Math.round((asUtc - Date.now()) / 6e4);
}
function timeTicks(min, max, step) {
  var offset = zoneOffsetMinutes() * 6e4;
  var first = Math.ceil((min + offset) / step) * step - offset;
  var ticks = [];
  for (var t = first; t <= max; t += step) ticks.push({ value: t });
  return ticks;
}

// Tick steps to choose from (minutes): the smallest that keeps the axis to about eight ticks.
var TICK_MINUTES = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 7200, 10080];
function tickStep(span) {
  for (var i = 0; i < TICK_MINUTES.length; i++) {
    if (span / (TICK_MINUTES[i] * 6e4) <= 8) return TICK_MINUTES[i] * 6e4;
  }
  return TICK_MINUTES[TICK_MINUTES.length - 1] * 6e4;
}
// The shortest span the axis shows, so a first reading seconds old is not a single point;
// short enough that a few minutes of polls already fill the width.
var MIN_SPAN = 2 * 6e4;
function firstTime(datasets) {
  var first = Infinity;
  datasets.forEach(function (ds) {
    for (var i = 0; i < ds.data.length; i++) {
      if (isNum(ds.data[i].y)) { first = Math.min(first, ds.data[i].x); break; }
    }
  });
  return first;
}

// Tooltip figures: percent to 1 decimal (2 under 10 %), amounts as the cards write them.
function tipPercent(v) { return isNum(v) ? fmtNum(v, Math.abs(v) < 10 ? 2 : 1) + "%" : "—"; }

function chartConfig(datasets, range, units) {
  var now = Date.now();
  var text = cssVar("--text-2");
  var grid = cssVar("--outline-soft");
  var y = yScale(datasets);
  // The axis starts where the data starts when that is inside the range: a young database
  // fills the width instead of sitting in a sliver at the right edge.
  var min = Math.min(Math.max(now - RANGES_MS[range], firstTime(datasets)), now - MIN_SPAN);
  var step = tickStep(now - min);
  var dayTicks = step >= 864e5;
  return {
    type: "line",
    data: { datasets: datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: REDUCED_MOTION ? false : { duration: 350 },
      parsing: false,
      normalized: true,
      spanGaps: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      elements: { point: { radius: 0, hoverRadius: 4, hitRadius: 6 }, line: { borderWidth: 2, tension: 0 } },
      plugins: {
        legend: { position: "top", align: "start", labels: { color: text, usePointStyle: true, pointStyle: "circle", boxWidth: 8, boxHeight: 8, padding: 14 } },
        tooltip: {
          callbacks: {
            title: function (items) { return items.length ? fmtWhen(items[0].parsed.x) : ""; },
            label: function (ctx) {
              var raw = ctx.raw || {};
              var extra = isNum(raw.used) ? " (" + amount(raw.used, units[ctx.datasetIndex]) + ")" : "";
              return " " + ctx.dataset.label + ": " + tipPercent(ctx.parsed.y) + extra;
            },
            afterLabel: function (ctx) {
              return isReset(ctx) ? "   ▲ reset (from " + tipPercent(ctx.raw.from) + ")" : "";
            }
          }
        }
      },
      scales: {
        x: {
          type: "linear",
          min: min,
          max: now,
          afterBuildTicks: function (axis) { axis.ticks = timeTicks(min, now, step); },
          grid: { color: grid },
          border: { color: grid },
          ticks: {
            color: text,
            maxRotation: 0,
            autoSkip: true,
            autoSkipPadding: 18,
            callback: function (v) { return fmtWhen(v, dayTicks ? "day" : "time"); }
          }
        },
        y: {
          min: 0,
          max: y[0],
          grid: { color: grid },
          border: { display: false },
          ticks: { color: text, stepSize: y[1], callback: function (v) { return v + "%"; } }
        }
      }
    }
  };
}

export function renderHistory() {
  var box = $("charts");
  var data = state.history || {};
  box.classList.toggle("both", isBoth());
  if (!Chart) {
    box.replaceChildren(el("div", { className: "chart-empty", text: "The chart library did not load." }));
    return;
  }
  var palette = PALETTE[theme()];
  var markerEdge = cssVar("--surface") || (theme() === "dark" ? "#000" : "#fff");
  var wanted = viewProviders();
  Object.keys(charts).forEach(function (pid) {
    if (wanted.indexOf(pid) < 0 || !document.body.contains(charts[pid].canvas)) {
      charts[pid].destroy();
      delete charts[pid];
    }
  });
  if (box.dataset.layout !== wanted.join(",")) {
    box.replaceChildren();
    box.dataset.layout = wanted.join(",");
  }
  wanted.forEach(function (pid, index) {
    var body = data[pid] || {};
    var series = (body.series || []).filter(function (s) {
      return !(state.quotaInfo[pid + ":" + s.key] || {}).hidden;
    });
    var taken = {};
    var datasets = series.map(function (s) {
      var hue = colorSlot(s.key);
      var color = palette[hue];
      // Two quotas of one chart on the same slot (keys SynTrack does not know yet): the
      // later one is dashed, so both keep their own stable colour and stay apart.
      var fillColor = alpha(color, theme() === "dark" ? 0.14 : 0.1);
      var dashed = taken[hue];
      taken[hue] = true;
      return {
        label: s.label || s.key,
        data: withGaps(s.points, body.gaps),
        borderColor: color,
        backgroundColor: fillColor,
        borderDash: dashed ? [6, 4] : [],
        // Every provider's lines filled alike, however many quotas it has.
        fill: "origin",
        spanGaps: false,
        // Room past the plot area, so a marker on the 0% line is not cut in half.
        clip: { left: 0, top: 10, right: 10, bottom: 10 },
        // Resets: a triangle at the reading after the drop; no marker elsewhere.
        pointStyle: function (ctx) { return isReset(ctx) ? "triangle" : "circle"; },
        pointRadius: function (ctx) { return isReset(ctx) ? 6 : 0; },
        pointHoverRadius: function (ctx) { return isReset(ctx) ? 8 : 4; },
        // Other points (hover dots, legend swatches) keep the default look: faint fill, coloured edge.
        pointBackgroundColor: function (ctx) { return isReset(ctx) ? color : fillColor; },
        pointBorderColor: function (ctx) { return isReset(ctx) ? markerEdge : color; },
        pointBorderWidth: function (ctx) { return isReset(ctx) ? 1.5 : 1; }
      };
    });
    var slot = box.querySelector('[data-chart="' + pid + '"]');
    if (!slot) {
      slot = el("div", { className: "chart-box", dataset: { chart: pid } }, [
        isBoth() ? el("h3", { className: "group-title", text: NAMES[pid] }) : null,
        el("div", { className: "chart-canvas" })
      ]);
      box.insertBefore(slot, box.children[index] || null);
    }
    var holder = slot.querySelector(".chart-canvas");
    var hasPoints = datasets.some(function (ds) { return ds.data.some(function (p) { return isNum(p.y); }); });
    if (!hasPoints) {
      if (charts[pid]) { charts[pid].destroy(); delete charts[pid]; }
      holder.replaceChildren(el("div", { className: "chart-empty", text: "No readings in the last " + state.chartRange + "." }));
      return;
    }
    var units = series.map(function (s) { return (state.quotaInfo[pid + ":" + s.key] || {}).unit; });
    var cfg = chartConfig(datasets, state.chartRange, units);
    if (charts[pid]) {
      var chart = charts[pid];
      chart.data.datasets = datasets;
      chart.options.scales = cfg.options.scales;
      chart.options.plugins.tooltip = cfg.options.plugins.tooltip;
      chart.update("none");
    } else {
      var canvas = el("canvas", { role: "img", "aria-label": NAMES[pid] + " usage over the last " + state.chartRange + ", percent of each limit; triangles mark resets" });
      holder.replaceChildren(canvas);
      charts[pid] = new Chart(canvas, cfg);
    }
  });
}

export function destroyCharts() {
  Object.keys(charts).forEach(function (pid) { charts[pid].destroy(); delete charts[pid]; });
  $("charts").replaceChildren();
  $("charts").dataset.layout = "";
}

// Until the user picks a range, the smallest one that holds everything tracked so far (a
// database minutes old gets 1h, not a 24h axis with the data in a sliver at its right edge);
// never more than 24h, the view a long-running install opens on.
var AUTO_RANGES = ["1h", "6h", "24h"];
function autoRange() {
  var since = Infinity;
  viewProviders().forEach(function (pid) {
    if (isNum(state.trackingSince[pid])) since = Math.min(since, state.trackingSince[pid]);
  });
  if (since === Infinity) return "24h";
  var tracked = Date.now() - since;
  for (var i = 0; i < AUTO_RANGES.length; i++) {
    if (tracked <= RANGES_MS[AUTO_RANGES[i]]) return AUTO_RANGES[i];
  }
  return "24h";
}
// When tracking started, per provider shown: asked of /api/summary once per view (until a
// provider has data), then known; the span it gives grows with the clock.
function loadTrackingSince() {
  var wanted = viewProviders().filter(function (pid) { return !isNum(state.trackingSince[pid]); });
  if (state.chartRangeChosen || !wanted.length) return Promise.resolve();
  return api(q("/api/summary", { provider: state.provider })).then(function (data) {
    var per = byProvider(data);
    wanted.forEach(function (pid) {
      var times = ((per[pid] && per[pid].quotas) || []).map(function (s) { return ms(s.tracking_since); }).filter(isNum);
      state.trackingSince[pid] = times.length ? Math.min.apply(null, times) : null;
    });
  }).catch(function () { /* no summary: the range stays as it is */ });
}

export function loadHistory() {
  return loadTrackingSince().then(function () {
    if (!state.chartRangeChosen) {
      state.chartRange = autoRange();
      pressed("chart-range", state.chartRange);
    }
    var range = state.chartRange;
    return api(q("/api/history", { provider: state.provider, range: range })).then(function (data) {
      if (range !== state.chartRange) return; // a newer choice is on its way
      state.history = byProvider(data);
      renderHistory();
    });
  });
}
