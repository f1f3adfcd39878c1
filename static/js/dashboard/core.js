/* SynTrack dashboard · core: config, state, storage, DOM helpers, formatting (numbers,
   durations, times in the user's timezone) and the API fetch wrapper (CSRF, 401 → sign-in).
   Every other dashboard module imports what it needs from here.
   Every value from the API goes in through textContent or attributes, never innerHTML. */
var configNode = document.getElementById("dashboard-config");
export var CONFIG = configNode ? JSON.parse(configNode.textContent) : {};
export var PROVIDERS = CONFIG.providers || [];
// No provider configured: the page says so and main.js starts nothing.
export var ready = PROVIDERS.length > 0;

export var NAMES = {};
PROVIDERS.forEach(function (p) { NAMES[p.id] = p.name; });
export var OPTIONS = PROVIDERS.map(function (p) { return p.id; }).concat(CONFIG.both ? ["both"] : []);
export var BROWSER_TZ = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "UTC";
export var REDUCED_MOTION = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
export var PAGE_SIZE = 10;
// "/" or "/syntrack/" under a base path (SYNTRACK_BASE_PATH): API paths below are written from the root.
export var ROOT = (CONFIG.root || "/").replace(/\/$/, "");
export var RANGES_MS = { "1h": 36e5, "6h": 6 * 36e5, "24h": 24 * 36e5, "7d": 7 * 864e5, "30d": 30 * 864e5 };

// ---------------------------------------------------------------- storage
export function load(key, fallback) {
  try {
    var v = window.localStorage.getItem("syntrack." + key);
    return v === null ? fallback : v;
  } catch (e) {
    return fallback;
  }
}
export function save(key, value) {
  try { window.localStorage.setItem("syntrack." + key, value); } catch (e) { /* not persisted */ }
}

function initialProvider() {
  var fromUrl = new URLSearchParams(window.location.search).get("provider");
  if (fromUrl && OPTIONS.indexOf(fromUrl) >= 0) return fromUrl;
  var saved = load("provider", null);
  return saved && OPTIONS.indexOf(saved) >= 0 ? saved : OPTIONS[0];
}

export var state = {
  provider: initialProvider(),
  // A range the user picked persists and wins; until then the chart picks one that fits
  // how long data has been tracked (chart.js), from trackingSince (ms per provider).
  chartRange: RANGES_MS[load("chartRange", "")] ? load("chartRange", "") : "24h",
  chartRangeChosen: !!RANGES_MS[load("chartRange", "")],
  trackingSince: {},
  providers: [],
  insightsRange: ["1d", "7d", "30d"].indexOf(load("insightsRange", "")) >= 0 ? load("insightsRange", "") : "7d",
  tz: (CONFIG.settings && CONFIG.settings.timezone) || null,
  hidden: (CONFIG.settings && CONFIG.settings.hidden_insights) || [],
  cycleChoice: load("cycleQuota", ""),
  current: {},
  history: null,
  quotaInfo: {},
  pages: { cycles: 1, sessions: 1, polls: 1 },
  rows: { cycles: [], sessions: [], polls: [] },
  refreshing: false,
  refreshAgain: false,
  failures: 0,
  hiddenRounds: 0,
  lastRefresh: 0,
  lastOk: null
};

export function zone() { return state.tz || BROWSER_TZ; }
export function viewProviders() {
  return state.provider === "both" ? PROVIDERS.map(function (p) { return p.id; }) : [state.provider];
}
export function isBoth() { return state.provider === "both"; }
export function byProvider(data) {
  if (isBoth()) return data || {};
  var out = {};
  out[state.provider] = data;
  return out;
}

// ---------------------------------------------------------------- DOM helpers
export var $ = function (id) { return document.getElementById(id); };

export function el(tag, props, children) {
  var node = document.createElement(tag);
  if (props) {
    Object.keys(props).forEach(function (k) {
      var v = props[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "className") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "dataset") Object.keys(v).forEach(function (d) { node.dataset[d] = v[d]; });
      else node.setAttribute(k, v === true ? "" : v);
    });
  }
  (children || []).forEach(function (c) {
    if (c === null || c === undefined || c === false) return;
    node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  });
  return node;
}

export function icon(name, cls) {
  var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "icon" + (cls ? " " + cls : ""));
  svg.setAttribute("aria-hidden", "true");
  var use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", "#i-" + name);
  svg.appendChild(use);
  return svg;
}

// ---------------------------------------------------------------- formatting
var nf = {};
function numFmt(max) {
  if (!nf[max]) nf[max] = new Intl.NumberFormat("en-US", { maximumFractionDigits: max });
  return nf[max];
}
export function isNum(v) { return typeof v === "number" && isFinite(v); }
export function fmtNum(v, max) { return isNum(v) ? numFmt(max === undefined ? 1 : max).format(v) : "—"; }
export function compact(v) {
  if (!isNum(v)) return "—";
  var a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + "B";
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "K";
  return fmtNum(v, 1);
}
export function amount(v, unit) {
  if (!isNum(v)) return "—";
  if (unit === "usd") return "$" + v.toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  if (unit === "percent") return fmtNum(v, 1) + "%";
  if (unit === "tokens") return compact(v);
  return fmtNum(v, 1);
}
export var UNIT_WORDS = { requests: "requests", calls: "calls", tokens: "tokens", credits: "credits" };
export function pct(v) { return isNum(v) ? fmtNum(v, 1) + "%" : "—"; }

var dtf = {};
export function resetDateFormats() { dtf = {}; }
export function dateFmt(kind) {
  var key = kind + "|" + zone();
  if (!dtf[key]) {
    var o = { timeZone: zone() };
    if (kind === "time") { o.hour = "numeric"; o.minute = "2-digit"; }
    else if (kind === "seconds") { o.hour = "numeric"; o.minute = "2-digit"; o.second = "2-digit"; }
    else if (kind === "day") { o.month = "short"; o.day = "numeric"; }
    else if (kind === "zone") { o.timeZoneName = "short"; }
    else if (kind === "parts") { o.year = "numeric"; o.month = "numeric"; o.day = "numeric"; o.hour = "numeric"; o.minute = "numeric"; o.hourCycle = "h23"; }
    else { o.month = "short"; o.day = "numeric"; o.hour = "numeric"; o.minute = "2-digit"; }
    try {
      dtf[key] = new Intl.DateTimeFormat(undefined, o);
    } catch (e) {
      o.timeZone = "UTC";
      dtf[key] = new Intl.DateTimeFormat(undefined, o);
    }
  }
  return dtf[key];
}
export function ms(iso) { var t = Date.parse(iso); return isNaN(t) ? null : t; }
export function fmtWhen(iso, kind) {
  var t = typeof iso === "number" ? iso : ms(iso);
  return t === null || iso === null || iso === undefined ? "—" : dateFmt(kind || "datetime").format(new Date(t));
}
// Today's times need no date.
export function fmtSmart(iso) {
  var t = ms(iso);
  if (t === null) return "—";
  var sameDay = dateFmt("day").format(new Date(t)) === dateFmt("day").format(new Date());
  return sameDay ? "today " + fmtWhen(t, "time") : fmtWhen(t, "datetime");
}
export function countdown(seconds) {
  if (!isNum(seconds)) return "—";
  if (seconds <= 0) return "now";
  var s = Math.floor(seconds);
  var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d > 0) return d + "d " + h + "h";
  if (h > 0) return h + "h " + m + "m";
  if (m > 0) return m + "m " + (s % 60) + "s";
  return s + "s";
}
export function span(seconds) {
  if (!isNum(seconds) || seconds < 0) return "—";
  var m = Math.round(seconds / 60);
  if (m < 1) return "< 1m";
  var d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60), mm = m % 60;
  if (d > 0) return d + "d " + h + "h";
  if (h > 0) return h + "h " + mm + "m";
  return mm + "m";
}
// A time today needs no date: "2:55 AM"; another day's does: "Dec 3, 2:55 AM".
export function fmtShort(iso) {
  var t = typeof iso === "number" ? iso : ms(iso);
  if (t === null) return "—";
  var sameDay = dateFmt("day").format(new Date(t)) === dateFmt("day").format(new Date());
  return fmtWhen(t, sameDay ? "time" : "datetime");
}
// A rough length for prose ("4 h before reset"): minutes under 90 min, hours under two days.
export function roughSpan(seconds) {
  if (!isNum(seconds) || seconds < 0) return "—";
  var m = Math.round(seconds / 60);
  if (m < 90) return Math.max(m, 1) + " min";
  if (m < 48 * 60) return Math.round(m / 60) + " h";
  return Math.round(m / 1440) + " d";
}
export function zoneLabel() {
  var z = zone();
  var parts = dateFmt("zone").formatToParts(new Date());
  var abbr = "";
  parts.forEach(function (p) { if (p.type === "timeZoneName") abbr = p.value; });
  var city = z.split("/").pop().replace(/_/g, " ");
  return city + (abbr && abbr !== city ? " (" + abbr + ")" : "");
}

// ---------------------------------------------------------------- API
export function csrfToken() {
  var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (m) return decodeURIComponent(m[1]);
  var input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

export function api(path, opts) {
  opts = opts || {};
  var init = { credentials: "same-origin", headers: { Accept: "application/json" } };
  if (opts.method && opts.method !== "GET") {
    init.method = opts.method;
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRFToken"] = csrfToken();
    init.body = JSON.stringify(opts.body || {});
  }
  return fetch(ROOT + path, init).then(function (res) {
    if (res.status === 401 && !opts.keep401) {
      window.location.assign((CONFIG.login_url || ROOT + "/login/") + "?next=" + encodeURIComponent(window.location.pathname));
      throw new Error("signed out");
    }
    var parse = res.status === 204 ? Promise.resolve(null) : res.json().catch(function () { return null; });
    return parse.then(function (data) {
      if (!res.ok) {
        var err = new Error((data && data.error) || "HTTP " + res.status);
        err.status = res.status;
        throw err;
      }
      return data;
    });
  });
}
export function q(path, params) {
  var usp = new URLSearchParams(params);
  return path + "?" + usp.toString();
}

export function report(err) {
  if (window.console && err && err.message !== "signed out") window.console.warn("SynTrack:", err);
}

export function saveSettings(changes) {
  return api("/api/settings", { method: "PUT", body: changes }).then(function (s) {
    state.tz = s.timezone || null;
    state.hidden = s.hidden_insights || [];
    return s;
  });
}
