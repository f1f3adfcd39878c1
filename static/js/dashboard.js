/* SynTrack dashboard: renders the JSON API (product.md §8) into the page shell.
   Every value from the API goes in through textContent or attributes, never innerHTML. */
(function () {
  "use strict";

  var configNode = document.getElementById("dashboard-config");
  if (!configNode) return;
  var CONFIG = JSON.parse(configNode.textContent);
  var PROVIDERS = CONFIG.providers || [];
  if (!PROVIDERS.length) return;

  var NAMES = {};
  PROVIDERS.forEach(function (p) { NAMES[p.id] = p.name; });
  var OPTIONS = PROVIDERS.map(function (p) { return p.id; }).concat(CONFIG.both ? ["both"] : []);
  var BROWSER_TZ = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "UTC";
  var REDUCED_MOTION = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  var PAGE_SIZE = 10;
  var RANGES_MS = { "1h": 36e5, "6h": 6 * 36e5, "24h": 24 * 36e5, "7d": 7 * 864e5, "30d": 30 * 864e5 };
  var TICK_STEP = { "1h": 10 * 6e4, "6h": 36e5, "24h": 3 * 36e5, "7d": 864e5, "30d": 5 * 864e5 };

  // ---------------------------------------------------------------- storage
  function load(key, fallback) {
    try {
      var v = window.localStorage.getItem("syntrack." + key);
      return v === null ? fallback : v;
    } catch (e) {
      return fallback;
    }
  }
  function save(key, value) {
    try { window.localStorage.setItem("syntrack." + key, value); } catch (e) { /* not persisted */ }
  }

  function initialProvider() {
    var fromUrl = new URLSearchParams(window.location.search).get("provider");
    if (fromUrl && OPTIONS.indexOf(fromUrl) >= 0) return fromUrl;
    var saved = load("provider", null);
    return saved && OPTIONS.indexOf(saved) >= 0 ? saved : OPTIONS[0];
  }

  var state = {
    provider: initialProvider(),
    chartRange: RANGES_MS[load("chartRange", "")] ? load("chartRange", "") : "24h",
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
    failures: 0,
    hiddenRounds: 0,
    lastRefresh: 0,
    lastOk: null
  };

  function zone() { return state.tz || BROWSER_TZ; }
  function viewProviders() {
    return state.provider === "both" ? PROVIDERS.map(function (p) { return p.id; }) : [state.provider];
  }
  function isBoth() { return state.provider === "both"; }
  function byProvider(data) {
    if (isBoth()) return data || {};
    var out = {};
    out[state.provider] = data;
    return out;
  }

  // ---------------------------------------------------------------- DOM helpers
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, props, children) {
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

  function icon(name, cls) {
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
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmtNum(v, max) { return isNum(v) ? numFmt(max === undefined ? 1 : max).format(v) : "—"; }
  function compact(v) {
    if (!isNum(v)) return "—";
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "B";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "K";
    return fmtNum(v, 1);
  }
  function amount(v, unit) {
    if (!isNum(v)) return "—";
    if (unit === "usd") return "$" + v.toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    if (unit === "percent") return fmtNum(v, 1) + "%";
    if (unit === "tokens") return compact(v);
    return fmtNum(v, 1);
  }
  var UNIT_WORDS = { requests: "requests", calls: "calls", tokens: "tokens", credits: "credits" };
  function pct(v) { return isNum(v) ? fmtNum(v, 1) + "%" : "—"; }

  var dtf = {};
  function dateFmt(kind) {
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
  function ms(iso) { var t = Date.parse(iso); return isNaN(t) ? null : t; }
  function fmtWhen(iso, kind) {
    var t = typeof iso === "number" ? iso : ms(iso);
    return t === null || iso === null || iso === undefined ? "—" : dateFmt(kind || "datetime").format(new Date(t));
  }
  // Today's times need no date.
  function fmtSmart(iso) {
    var t = ms(iso);
    if (t === null) return "—";
    var sameDay = dateFmt("day").format(new Date(t)) === dateFmt("day").format(new Date());
    return sameDay ? "today " + fmtWhen(t, "time") : fmtWhen(t, "datetime");
  }
  function countdown(seconds) {
    if (!isNum(seconds)) return "—";
    if (seconds <= 0) return "now";
    var s = Math.floor(seconds);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + (s % 60) + "s";
    return s + "s";
  }
  function span(seconds) {
    if (!isNum(seconds) || seconds < 0) return "—";
    var m = Math.round(seconds / 60);
    if (m < 1) return "< 1m";
    var d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60), mm = m % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + mm + "m";
    return mm + "m";
  }
  function zoneLabel() {
    var z = zone();
    var parts = dateFmt("zone").formatToParts(new Date());
    var abbr = "";
    parts.forEach(function (p) { if (p.type === "timeZoneName") abbr = p.value; });
    var city = z.split("/").pop().replace(/_/g, " ");
    return city + (abbr && abbr !== city ? " (" + abbr + ")" : "");
  }

  // ---------------------------------------------------------------- API
  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function api(path, opts) {
    opts = opts || {};
    var init = { credentials: "same-origin", headers: { Accept: "application/json" } };
    if (opts.method && opts.method !== "GET") {
      init.method = opts.method;
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRFToken"] = csrfToken();
      init.body = JSON.stringify(opts.body || {});
    }
    return fetch(path, init).then(function (res) {
      if (res.status === 401 && !opts.keep401) {
        window.location.assign("/login/?next=" + encodeURIComponent(window.location.pathname));
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
  function q(path, params) {
    var usp = new URLSearchParams(params);
    return path + "?" + usp.toString();
  }

  // ---------------------------------------------------------------- header
  function renderTabs() {
    document.querySelectorAll("#provider-tabs [data-provider]").forEach(function (b) {
      var on = b.dataset.provider === state.provider;
      b.setAttribute("aria-selected", on ? "true" : "false");
      b.tabIndex = on ? 0 : -1;
    });
    var sub = isBoth() ? "All your providers’ quotas" : NAMES[state.provider] + " quotas";
    $("page-sub").textContent = sub + ": usage, resets and trends, in " + zone().replace(/_/g, " ") + " time.";
    $("tz-label").textContent = zoneLabel();
  }

  function pressed(groupId, value) {
    document.querySelectorAll("#" + groupId + " [data-range]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.range === value ? "true" : "false");
    });
  }

  function setUpdated(ok) {
    var dot = $("status-dot");
    var label = $("last-updated");
    if (ok) {
      state.lastOk = Date.now();
      dot.className = "status-dot ok";
      label.textContent = "Updated " + fmtWhen(state.lastOk, "seconds");
      var captured = viewProviders().map(function (p) {
        var c = state.current[p];
        return NAMES[p] + ": " + (c && c.captured_at ? fmtWhen(c.captured_at) : "no data yet");
      });
      label.title = "Last poll data — " + captured.join(" · ");
    } else {
      dot.className = "status-dot stale";
      label.textContent = state.lastOk ? "Stale since " + fmtWhen(state.lastOk, "time") : "Cannot reach the server";
      label.title = "Retrying with back-off";
    }
  }

  // ---------------------------------------------------------------- banners
  var OUTCOME_TEXT = {
    ok: "OK",
    drift: "Schema drift",
    unauthorized: "Unauthorized",
    rate_limited: "Rate-limited",
    server_error: "Server error",
    network_error: "Network error",
    invalid_response: "Invalid response"
  };
  var OUTCOME_HINT = {
    unauthorized: "Check the API key in the configuration.",
    rate_limited: "The provider asked SynTrack to slow down; polling backs off by itself.",
    server_error: "The provider is having trouble; polling retries with back-off.",
    network_error: "The provider could not be reached; polling retries with back-off.",
    invalid_response: "The provider answered with something SynTrack cannot read.",
    drift: "The answer carried no usable quota. Its raw body is kept; `manage.py reparse` rebuilds readings after an update."
  };

  function renderBanners(providerList) {
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
      if (outcome && outcome !== "ok") {
        var text = [el("strong", { text: p.name + ": the last poll failed (" + (OUTCOME_TEXT[outcome] || outcome) + ")" })];
        text.push(" at " + fmtSmart(at) + ". ");
        if (last && last.message) text.push(el("span", { className: "sub", text: last.message + " " }));
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
      }
    });
  }

  // ---------------------------------------------------------------- quota cards
  var KEY_ICONS = {
    subscription: "briefcase", search_hourly: "search", free_tool_calls: "wrench", rolling_5h: "zap",
    weekly_credits: "dollar", tokens_5h: "layers", tokens_weekly: "layers", time_monthly: "wrench",
    credits_5h: "dollar", credits_weekly: "dollar"
  };
  var STATUS = {
    healthy: ["check", "Healthy"], warning: ["alert", "Warning"], danger: ["alert", "Danger"], critical: ["octagon", "Critical"]
  };
  function statusFor(p) {
    if (!isNum(p)) return "healthy";
    return p >= 95 ? "critical" : p >= 80 ? "danger" : p >= 50 ? "warning" : "healthy";
  }
  function badge(status) {
    var s = STATUS[status] || STATUS.healthy;
    return el("span", { className: "badge badge-" + status }, [icon(s[0]), s[1]]);
  }
  function stat(label, value, extra) {
    var dd = el("dd", extra || null, Array.isArray(value) ? value : [value]);
    return el("div", null, [el("dt", { text: label }), dd]);
  }
  function live(untilIso, prefix) {
    // A span the 1-second ticker keeps current.
    var t = ms(untilIso);
    if (t === null) return el("span", { text: "—" });
    return el("span", { className: "live", dataset: { until: String(t), prefix: prefix || "" } });
  }

  function quotaCard(pid, q) {
    var st = q.status || statusFor(q.percent);
    var rolling = q.kind === "rolling";
    var d = q.details || {};
    var card = el("article", { className: "card s-" + st, dataset: { quota: pid + ":" + q.key }, "aria-label": q.label });

    var headKids = [
      el("span", { className: "card-icon" }, [icon(KEY_ICONS[q.key] || "gauge")]),
      el("div", { className: "card-title" }, [q.label, rolling ? el("small", { text: "Rolling window" }) : null])
    ];
    if (q.resets_at) {
      headKids.push(el("span", { className: "countdown", title: (rolling ? "Next tick in" : "Resets in") }, [
        icon(rolling ? "zap" : "clock"), live(q.resets_at)
      ]));
    }
    card.appendChild(el("div", { className: "card-head" }, headKids));

    var big = el("div", { className: "big-percent" }, [isNum(q.percent) ? q.percent.toFixed(1) : "—", el("span", { className: "unit", text: "%" })]);
    var fraction;
    if (isNum(q.used) && isNum(q.limit)) {
      fraction = amount(q.used, q.unit) + " / " + amount(q.limit, q.unit) + (UNIT_WORDS[q.unit] ? " " + UNIT_WORDS[q.unit] : "");
    } else if (isNum(q.used)) {
      fraction = amount(q.used, q.unit) + " used";
    } else {
      fraction = "share of limit only";
    }
    card.appendChild(el("div", { className: "card-figures" }, [big, el("div", { className: "fraction", text: fraction, title: isNum(q.used) ? fmtNum(q.used, 2) + " / " + fmtNum(q.limit, 2) : null })]));

    var bar = el("div", { className: "progress-bar" });
    bar.style.width = Math.max(0, Math.min(100, q.percent || 0)) + "%";
    card.appendChild(el("div", {
      className: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
      "aria-valuenow": String(Math.round((q.percent || 0) * 10) / 10), "aria-label": q.label + " used"
    }, [bar]));

    var badges = [badge(st)];
    if (rolling && d.limited) badges.push(el("span", { className: "badge badge-critical" }, [icon("ban"), "Limited"]));
    card.appendChild(el("div", { className: "card-row" }, [
      el("span", { className: "card-row" }, badges),
      q.resets_at ? el("span", { className: "reset-at", text: (rolling ? "Next tick " : "Resets ") + fmtSmart(q.resets_at), title: fmtWhen(q.resets_at) + " (" + zone() + ")" }) : null
    ]));

    var stats = [];
    var rate = isNum(q.rate_per_hour) ? amount(q.rate_per_hour, q.unit) + "/h" : "—";
    stats.push(stat("Burn rate", rate, isNum(q.rate_per_hour) ? null : { title: "Needs two readings in this cycle" }));
    if (rolling) {
      stats.push(stat("Remaining", amount(q.remaining, q.unit)));
      var restore = isNum(d.regen_amount) ? "+" + amount(d.regen_amount, q.unit) : isNum(d.tick_percent) ? "+" + fmtNum(d.tick_percent, 1) + "%" : null;
      var tickAt = d.next_tick_at || q.resets_at;
      stats.push(stat("Next tick", restore && tickAt ? [restore + " in ", live(tickAt)] : tickAt ? [live(tickAt)] : "—"));
      var again = d.available_again || null;
      var half = again ? again["50"] : undefined;
      stats.push(stat("50% free again", half === null ? "now" : half ? fmtSmart(half) : "—"));
    } else {
      stats.push(stat("Remaining", amount(q.remaining, q.unit)));
      var proj = isNum(q.projected_used) ? amount(q.projected_used, q.unit) : null;
      var projPct = isNum(q.projected_percent) ? fmtNum(q.projected_percent, 1) + "%" : null;
      var projText = proj && projPct ? [proj + " ", el("small", { text: "(" + projPct + ")" })] : proj || projPct || "—";
      stats.push(stat("At reset", projText, isNum(q.projected_percent) && q.projected_percent >= 100 ? { className: "warn" } : null));
    }
    if (q.exhausted) {
      stats.push(stat("Runs out", "exhausted", { className: "warn" }));
    } else if (q.exhausts_at) {
      stats.push(stat("Runs out", [live(q.exhausts_at, "in ")], { className: "warn", title: fmtWhen(q.exhausts_at) }));
    } else if (!rolling) {
      stats.push(stat("Runs out", q.resets_at ? "after reset" : "—"));
    }
    card.appendChild(el("dl", { className: "stats" }, stats));

    if (Array.isArray(d.tools) && d.tools.length) {
      var max = Math.max.apply(null, d.tools.map(function (t) { return t.used || 0; }).concat([1]));
      var list = el("ul", { className: "tools", "aria-label": "Per-tool usage" });
      d.tools.slice().sort(function (a, b) { return (b.used || 0) - (a.used || 0); }).forEach(function (t) {
        var fill = el("span");
        fill.style.width = ((t.used || 0) / max) * 100 + "%";
        list.appendChild(el("li", null, [
          el("span", { className: "tool-name", text: String(t.name), title: String(t.name) }),
          el("span", { className: "tool-used", text: fmtNum(t.used, 1) }),
          el("span", { className: "tool-bar", "aria-hidden": "true" }, [fill])
        ]));
      });
      card.appendChild(list);
    }
    return card;
  }

  function renderCurrent() {
    var wrap = $("quota-groups");
    wrap.replaceChildren();
    wrap.classList.toggle("both", isBoth());
    wrap.setAttribute("aria-busy", "false");
    var plans = [];
    viewProviders().forEach(function (pid) {
      var body = state.current[pid];
      var group = el("div", { className: "quota-group", dataset: { provider: pid } });
      if (isBoth()) {
        group.appendChild(el("h3", { className: "group-title" }, [
          NAMES[pid], body && body.plan ? el("span", { className: "plan-chip", text: body.plan }) : null
        ]));
      } else if (body && body.plan) {
        plans.push(body.plan);
      }
      if (!body || !body.captured_at) {
        group.appendChild(el("div", { className: "empty-state" }, [
          el("strong", { text: "No data from " + NAMES[pid] + " yet" }),
          "Waiting for the first successful poll. Is `python manage.py poll` running?"
        ]));
      } else {
        var cards = el("div", { className: "cards" });
        (body.quotas || []).forEach(function (qq) { if (!qq.hidden) cards.appendChild(quotaCard(pid, qq)); });
        if (!cards.childNodes.length) cards.appendChild(el("div", { className: "empty-state", text: "No quota to show." }));
        group.appendChild(cards);
      }
      wrap.appendChild(group);
    });
    var chip = $("plan-chip");
    chip.textContent = plans.length ? plans[0] + " plan" : "";
    chip.classList.toggle("hidden", !plans.length);
    tickLive();
  }

  function tickLive() {
    var now = Date.now();
    document.querySelectorAll(".live").forEach(function (node) {
      var left = (Number(node.dataset.until) - now) / 1000;
      node.textContent = left <= 0 ? "due" : (node.dataset.prefix || "") + countdown(left);
      var pill = node.closest(".countdown");
      if (pill) pill.classList.toggle("imminent", left > 0 && left < 1800);
    });
  }

  // ---------------------------------------------------------------- chart
  var charts = {};
  var PALETTE = {
    light: ["#0b8479", "#e08a00", "#2f6fde", "#8b5cf6", "#d9467a", "#15803d", "#0891b2"],
    dark: ["#3fd6c3", "#fbbf24", "#60a5fa", "#a78bfa", "#f472b6", "#4ade80", "#22d3ee"]
  };
  function theme() { return document.documentElement.getAttribute("data-theme") === "dark" ? "dark" : "light"; }
  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }

  function withGaps(points, gaps) {
    var spans = (gaps || []).map(function (g) { return [ms(g[0]), ms(g[1])]; });
    var out = [];
    var prev = null;
    (points || []).forEach(function (p) {
      var t = ms(p[0]);
      if (t === null) return;
      if (prev !== null && spans.some(function (g) { return g[0] < t && g[1] > prev; })) {
        out.push({ x: (prev + t) / 2, y: null });
      }
      out.push({ x: t, y: isNum(p[1]) ? p[1] : null, used: p[2] });
      prev = t;
    });
    return out;
  }

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

  function chartConfig(datasets, range) {
    var now = Date.now();
    var text = cssVar("--text-2");
    var grid = cssVar("--outline-soft");
    var longRange = range === "7d" || range === "30d";
    var y = yScale(datasets);
    var min = now - RANGES_MS[range];
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
                var extra = isNum(raw.used) ? " (" + fmtNum(raw.used, 1) + ")" : "";
                return " " + ctx.dataset.label + ": " + pct(ctx.parsed.y) + extra;
              }
            }
          }
        },
        scales: {
          x: {
            type: "linear",
            min: min,
            max: now,
            afterBuildTicks: function (axis) { axis.ticks = timeTicks(min, now, TICK_STEP[range]); },
            grid: { color: grid },
            border: { color: grid },
            ticks: {
              color: text,
              maxRotation: 0,
              autoSkip: true,
              autoSkipPadding: 18,
              callback: function (v) { return fmtWhen(v, longRange ? "day" : "time"); }
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

  function renderHistory() {
    var box = $("charts");
    var data = state.history || {};
    box.classList.toggle("both", isBoth());
    if (typeof window.Chart === "undefined") {
      box.replaceChildren(el("div", { className: "chart-empty", text: "The chart library did not load." }));
      return;
    }
    var palette = PALETTE[theme()];
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
      var datasets = series.map(function (s, i) {
        var color = palette[i % palette.length];
        return {
          label: s.label || s.key,
          data: withGaps(s.points, body.gaps),
          borderColor: color,
          backgroundColor: alpha(color, theme() === "dark" ? 0.14 : 0.1),
          fill: series.length <= 3 ? "origin" : false,
          spanGaps: false
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
      var cfg = chartConfig(datasets, state.chartRange);
      if (charts[pid]) {
        var chart = charts[pid];
        chart.data.datasets = datasets;
        chart.options.scales = cfg.options.scales;
        chart.update("none");
      } else {
        var canvas = el("canvas", { role: "img", "aria-label": NAMES[pid] + " usage over the last " + state.chartRange + ", percent of each limit" });
        holder.replaceChildren(canvas);
        charts[pid] = new window.Chart(canvas, cfg);
      }
    });
  }

  function destroyCharts() {
    Object.keys(charts).forEach(function (pid) { charts[pid].destroy(); delete charts[pid]; });
    $("charts").replaceChildren();
    $("charts").dataset.layout = "";
  }

  // ---------------------------------------------------------------- insights
  var SEVERITY_ICON = { positive: "check-circle", warning: "alert", negative: "octagon", info: "info" };

  function renderInsights(data) {
    var box = $("insights");
    box.replaceChildren();
    var per = byProvider(data);
    viewProviders().forEach(function (pid) {
      var body = per[pid] || {};
      var group = el("div", { className: "insight-group" });
      if (isBoth()) group.appendChild(el("h3", { className: "group-title", text: NAMES[pid] }));
      var stats = body.stats || [];
      if (stats.length) {
        group.appendChild(el("div", { className: "stat-tiles" }, stats.map(function (s) {
          return el("div", { className: "stat-tile" }, [
            el("div", { className: "value", text: s.value === null || s.value === undefined ? "—" : String(s.value) }),
            el("div", { className: "label", text: s.label })
          ]);
        })));
      }
      var items = (body.insights || []).filter(function (i) { return state.hidden.indexOf(i.key) < 0; });
      if (items.length) {
        group.appendChild(el("div", { className: "insight-cards" }, items.map(function (i) {
          var sev = SEVERITY_ICON[i.severity] ? i.severity : "info";
          var hide = el("button", { type: "button", className: "icon-btn insight-hide", "aria-label": "Hide “" + i.title + "”", title: "Hide this insight" }, [icon("eye-off")]);
          hide.addEventListener("click", function () { hideInsight(i.key); });
          // The "all hidden" stand-in is no real insight: nothing to hide there.
          if (i.key === "insights_hidden") hide = null;
          return el("article", { className: "insight sev-" + sev, dataset: { insight: i.key } }, [
            el("div", { className: "insight-head" }, [icon(SEVERITY_ICON[sev]), i.title]),
            el("div", { className: "insight-value", text: i.value === null || i.value === undefined ? "—" : String(i.value) }),
            i.sublabel ? el("div", { className: "insight-sub", text: i.sublabel }) : null,
            i.description ? el("p", { className: "insight-desc", text: i.description }) : null,
            hide
          ]);
        })));
      } else if (!stats.length) {
        group.appendChild(el("p", { className: "muted", text: "Insights appear once a few polls are stored." }));
      }
      box.appendChild(group);
    });
    var showAll = $("show-hidden-insights");
    showAll.textContent = state.hidden.length + " hidden · show all";
    showAll.classList.toggle("hidden", !state.hidden.length);
  }

  function saveSettings(changes) {
    return api("/api/settings", { method: "PUT", body: changes }).then(function (s) {
      state.tz = s.timezone || null;
      state.hidden = s.hidden_insights || [];
      return s;
    });
  }
  function hideInsight(key) {
    saveSettings({ hidden_insights: state.hidden.concat([key]) }).then(loadInsights).catch(report);
  }

  // ---------------------------------------------------------------- tables
  function renderPager(id, total, page, onPage) {
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

  function renderTable(name, headers, rowFn, emptyText) {
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
  function cycleOptions() {
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

  function loadCycles() {
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
  function drawCycles() {
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

  function loadSessions() {
    return api(q("/api/sessions", { provider: state.provider, limit: 200 })).then(function (data) {
      var rows = [];
      if (isBoth()) {
        viewProviders().forEach(function (pid) { rows = rows.concat(((data[pid] || {}).sessions || [])); });
        rows.sort(function (a, b) { return (ms(b.started_at) || 0) - (ms(a.started_at) || 0); });
      } else {
        rows = data.sessions || [];
      }
      state.rows.sessions = rows;
      drawSessions(true);
    });
  }
  function drawSessions(withHead) {
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

  function loadPolls() {
    return api(q("/api/polls", { provider: state.provider, limit: 100 })).then(function (data) {
      var rows = [];
      if (isBoth()) {
        viewProviders().forEach(function (pid) { rows = rows.concat(((data[pid] || {}).polls || [])); });
        rows.sort(function (a, b) { return (ms(b.at) || 0) - (ms(a.at) || 0); });
      } else {
        rows = data.polls || [];
      }
      state.rows.polls = rows;
      drawPolls(true);
    });
  }
  function drawPolls(withHead) {
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

  // ---------------------------------------------------------------- loading
  function report(err) {
    if (window.console && err && err.message !== "signed out") window.console.warn("SynTrack:", err);
  }

  function loadCurrent() {
    return api(q("/api/current", { provider: state.provider })).then(function (data) {
      var per = byProvider(data);
      viewProviders().forEach(function (pid) {
        state.current[pid] = per[pid];
        ((per[pid] && per[pid].quotas) || []).forEach(function (qq) { state.quotaInfo[pid + ":" + qq.key] = qq; });
      });
      renderCurrent();
    });
  }
  function loadProviders() {
    return api("/api/providers").then(function (d) { renderBanners(d.providers || []); })
      .catch(function (e) { renderBanners([]); throw e; });
  }
  function loadHistory() {
    return api(q("/api/history", { provider: state.provider, range: state.chartRange })).then(function (data) {
      state.history = byProvider(data);
      renderHistory();
    });
  }
  function loadInsights() {
    return api(q("/api/insights", { provider: state.provider, range: state.insightsRange })).then(renderInsights);
  }

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
    if (state.refreshing) return Promise.resolve();
    state.refreshing = true;
    var btn = $("refresh-btn");
    btn.classList.add("spinning");
    var started = Date.now();
    return loadCurrent()
      .then(function () {
        return Promise.allSettled([loadProviders(), loadHistory(), loadInsights(), loadCycles(), loadSessions(), loadPolls()]);
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
        state.lastRefresh = Date.now();
        document.body.dataset.loaded = "true";
        window.setTimeout(function () { btn.classList.remove("spinning"); }, Math.max(0, 500 - (Date.now() - started)));
        schedule();
      });
  }

  // ---------------------------------------------------------------- dialogs
  function closeOnBackdrop(dialog) {
    dialog.addEventListener("click", function (e) { if (e.target === dialog) dialog.close(); });
    dialog.querySelectorAll("[data-close-dialog]").forEach(function (b) {
      b.addEventListener("click", function () { dialog.close(); });
    });
  }
  function showMessage(node, text) {
    node.replaceChildren(icon(node.classList.contains("alert-error") ? "x-circle" : "check-circle"), el("span", { text: text }));
    node.classList.remove("hidden");
  }

  function setupPassword() {
    var dialog = $("password-dialog");
    var form = $("password-form");
    var error = $("password-error");
    var success = $("password-success");
    var submit = $("password-submit");
    closeOnBackdrop(dialog);
    document.querySelectorAll("[data-open-password]").forEach(function (b) {
      b.addEventListener("click", function () {
        form.reset();
        error.classList.add("hidden");
        success.classList.add("hidden");
        submit.disabled = false;
        dialog.showModal();
        $("current-password").focus();
      });
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      error.classList.add("hidden");
      success.classList.add("hidden");
      var current = form.current_password.value;
      var next = form.new_password.value;
      if (!current) return showMessage(error, "Enter your current password.");
      if (next.length < 8) return showMessage(error, "The new password needs at least 8 characters.");
      if (next !== form.confirm_password.value) return showMessage(error, "The new passwords do not match.");
      submit.disabled = true;
      api("/api/password", { method: "PUT", body: { current_password: current, new_password: next }, keep401: true })
        .then(function () {
          form.reset();
          showMessage(success, "Password changed. Other sessions have been signed out.");
          var warn = $("default-password-banner");
          if (warn) warn.remove();
          window.setTimeout(function () { if (dialog.open) dialog.close(); }, 1800);
        })
        .catch(function (err) {
          var text = err.status === 403 ? "The current password is incorrect."
            : err.status === 429 ? "Too many attempts. Wait a while and try again."
            : err.status === 401 ? "Your session has ended. Sign in again."
            : err.message || "The password could not be changed.";
          showMessage(error, text);
          submit.disabled = false;
          if (err.status === 403) { form.current_password.select(); }
        })
        .then(function () { if (!success.classList.contains("hidden")) submit.disabled = false; });
    });
  }

  function setupTimezone() {
    var dialog = $("tz-dialog");
    var select = $("tz-select");
    var error = $("tz-error");
    closeOnBackdrop(dialog);
    var zones = [];
    try { zones = Intl.supportedValuesOf("timeZone"); } catch (e) { zones = []; }
    if (zones.indexOf("UTC") < 0) zones = ["UTC"].concat(zones);
    if (zones.indexOf(BROWSER_TZ) < 0) zones.push(BROWSER_TZ);
    select.appendChild(el("option", { value: "", text: "This browser’s zone (" + BROWSER_TZ.replace(/_/g, " ") + ")" }));
    zones.forEach(function (z) { select.appendChild(el("option", { value: z, text: z.replace(/_/g, " ") })); });
    $("tz-btn").addEventListener("click", function () {
      select.value = state.tz || "";
      error.classList.add("hidden");
      dialog.showModal();
      select.focus();
    });
    $("tz-form").addEventListener("submit", function (e) {
      e.preventDefault();
      saveSettings({ timezone: select.value || null })
        .then(function () {
          dialog.close();
          dtf = {};
          renderTabs();
          destroyCharts();
          refreshAll();
        })
        .catch(function (err) { showMessage(error, err.message || "Could not save the timezone."); });
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
    setupTimezone();
    pressed("chart-range", state.chartRange);
    pressed("insights-range", state.insightsRange);
    renderTabs();
    drawSessions(true);
    drawPolls(true);
    window.setInterval(tickLive, 1000);
    refreshAll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
