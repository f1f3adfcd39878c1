/* SynTrack dashboard · insights: the stat tiles and insight cards, and hiding insights.
   Every value from the API goes in through textContent or attributes, never innerHTML. */
import { $, NAMES, state, isBoth, viewProviders, byProvider, el, icon, api, q, report, saveSettings } from "./core.js";

// ---------------------------------------------------------------- insights
var SEVERITY_ICON = { positive: "check-circle", warning: "alert", negative: "octagon", info: "info" };

export function renderInsights(data) {
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

export function hideInsight(key) {
  saveSettings({ hidden_insights: state.hidden.concat([key]) }).then(loadInsights).catch(report);
}

export function loadInsights() {
  return api(q("/api/insights", { provider: state.provider, range: state.insightsRange })).then(renderInsights);
}
