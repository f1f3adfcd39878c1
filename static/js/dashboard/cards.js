/* SynTrack dashboard · cards: the quota cards and their live countdowns.
   Every value from the API goes in through textContent or attributes, never innerHTML. */
import { $, NAMES, state, zone, isBoth, viewProviders, byProvider, el, icon, isNum, fmtNum, amount, UNIT_WORDS, ms, fmtWhen, fmtSmart, fmtShort, roughSpan, countdown, api, q } from "./core.js";

// ---------------------------------------------------------------- quota cards
var KEY_ICONS = {
  subscription: "briefcase", search_hourly: "search", free_tool_calls: "wrench", rolling_5h: "zap",
  weekly_credits: "dollar", tokens_5h: "layers", tokens_weekly: "layers", time_monthly: "wrench",
  credits_5h: "dollar", credits_weekly: "dollar"
};
var STATUS = {
  healthy: ["check", "Healthy"], warning: ["alert", "Warning"], danger: ["alert", "Danger"], critical: ["octagon", "Critical"]
};
export function statusFor(p) {
  if (!isNum(p)) return "healthy";
  return p >= 95 ? "critical" : p >= 80 ? "danger" : p >= 50 ? "warning" : "healthy";
}
// The API's outlook, or (from a server without the field) what its exhaustion fields say.
export function outlookFor(q) {
  if (q.outlook) return q.outlook;
  if (q.exhausted || (q.details && q.details.limited)) return "exhausted";
  return q.exhausts_at ? "runs_out_before_reset" : "ok";
}
// The card's level is the worse of status and outlook: a card never says "Healthy" next
// to its own "runs out in 47m". exhausted > runs_out_before_reset > critical > … > healthy.
export function levelFor(q) {
  var outlook = outlookFor(q);
  if (outlook === "exhausted") return "exhausted";
  if (outlook === "runs_out_before_reset") return "runs-out";
  return q.status || statusFor(q.percent);
}
function runsOutText(q) {
  var out = ms(q.exhausts_at);
  if (out === null) return "Runs out soon";
  var text = "Runs out " + fmtShort(out);
  if (q.kind === "rolling") return text + " · refills can’t keep up";
  var reset = ms(q.resets_at);
  return reset !== null && reset > out ? text + " · " + roughSpan((reset - out) / 1000) + " before reset" : text;
}
function badge(q, level) {
  if (level === "exhausted") {
    var limited = q.kind === "rolling" && q.details && q.details.limited;
    return el("span", { className: "badge badge-exhausted" }, [icon("ban"), limited ? "Limited" : "Exhausted"]);
  }
  if (level === "runs-out") {
    return el("span", { className: "badge badge-runs-out", title: fmtWhen(q.exhausts_at) + " (" + zone() + ")" }, [icon("hourglass"), runsOutText(q)]);
  }
  var s = STATUS[level] || STATUS.healthy;
  return el("span", { className: "badge badge-" + level }, [icon(s[0]), s[1]]);
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

export function quotaCard(pid, q) {
  var level = levelFor(q);
  var outlook = outlookFor(q);
  var rolling = q.kind === "rolling";
  var d = q.details || {};
  var card = el("article", { className: "card s-" + level, dataset: { quota: pid + ":" + q.key }, "aria-label": q.label });

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

  var badges = [badge(q, level)];
  card.appendChild(el("div", { className: "card-row" }, [
    el("span", { className: "card-row" }, badges),
    q.resets_at ? el("span", { className: "reset-at", text: (rolling ? "Next tick " : "Resets ") + fmtSmart(q.resets_at), title: fmtWhen(q.resets_at) + " (" + zone() + ")" }) : null
  ]));

  var stats = [];
  var rate = isNum(q.rate_per_hour) ? amount(q.rate_per_hour, q.unit) + "/h" : "—";
  // A rate from too few readings is shown, but nothing is projected from it (numbers.MIN_READINGS/MIN_SPAN).
  var early = q.rate_basis === "insufficient";
  stats.push(stat("Burn rate", rate, isNum(q.rate_per_hour)
    ? (early ? { title: "Early estimate: projections start after 3 readings over 5 minutes" } : null)
    : { title: "Needs two readings in this cycle" }));
  if (rolling) {
    stats.push(stat("Remaining", amount(q.remaining, q.unit)));
    var restore = isNum(d.regen_amount) ? "+" + amount(d.regen_amount, q.unit) : isNum(d.tick_percent) ? "+" + fmtNum(d.tick_percent, 1) + "%" : null;
    // upcoming_tick_at: the reported next tick of an old reading may have passed.
    var tickAt = d.upcoming_tick_at || d.next_tick_at || q.resets_at;
    stats.push(stat("Next tick", restore && tickAt ? [restore + " in ", live(tickAt)] : tickAt ? [live(tickAt)] : "—"));
    var again = d.available_again || null;
    var half = again ? again["50"] : undefined;
    stats.push(stat("50% free again", half === null ? "already free" : half ? fmtSmart(half) : "—"));
  } else {
    stats.push(stat("Remaining", amount(q.remaining, q.unit)));
    var proj = isNum(q.projected_used) ? amount(q.projected_used, q.unit) : null;
    var projPct = isNum(q.projected_percent) ? fmtNum(q.projected_percent, 1) + "%" : null;
    var projText = proj && projPct ? [proj + " ", el("small", { text: "(" + projPct + ")" })] : proj || projPct || "—";
    stats.push(stat("At reset", projText, isNum(q.projected_percent) && q.projected_percent >= 100 ? { className: "warn" } : null));
  }
  if (outlook === "exhausted") {
    stats.push(stat("Runs out", rolling && d.limited ? "limited now" : "exhausted", { className: "warn" }));
  } else if (outlook === "runs_out_before_reset" && q.exhausts_at) {
    stats.push(stat("Runs out", [live(q.exhausts_at, "in ")], { className: "warn", title: fmtWhen(q.exhausts_at) }));
  } else if (!rolling) {
    var projected = isNum(q.projected_used) || isNum(q.projected_percent);
    stats.push(stat("Runs out", q.resets_at && projected ? "after reset" : "—",
      early ? { title: "Not enough readings yet to project" } : null));
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

export function renderCurrent() {
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

export function tickLive() {
  var now = Date.now();
  document.querySelectorAll(".live").forEach(function (node) {
    var left = (Number(node.dataset.until) - now) / 1000;
    node.textContent = left <= 0 ? "due" : (node.dataset.prefix || "") + countdown(left);
    var pill = node.closest(".countdown");
    if (pill) pill.classList.toggle("imminent", left > 0 && left < 1800);
  });
}

export function loadCurrent() {
  return api(q("/api/current", { provider: state.provider })).then(function (data) {
    var per = byProvider(data);
    viewProviders().forEach(function (pid) {
      state.current[pid] = per[pid];
      ((per[pid] && per[pid].quotas) || []).forEach(function (qq) { state.quotaInfo[pid + ":" + qq.key] = qq; });
    });
    renderCurrent();
  });
}
