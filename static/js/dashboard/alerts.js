/* SynTrack dashboard · alerts: the newest alerts SynTrack sent (GET /api/alerts), with how each
   channel took them. Channels come masked from the API; the list never shows a URL. */
import { $, api, el, icon, fmtSmart, isBoth, viewProviders } from "./core.js";

var SHOWN = 8;
var ICONS = {
  threshold: "gauge", runs_out: "hourglass", exhausted: "ban", reset: "refresh",
  auth_failed: "lock", drift: "alert", failing: "x-circle", recovered: "check-circle"
};

export function loadAlerts() {
  return api("/api/alerts?limit=50").then(function (data) { drawAlerts(data.alerts || []); });
}

function badgeClass(alert) {
  if (alert.level === "critical" || alert.event === "exhausted" || alert.event === "auth_failed" || alert.event === "failing") return "badge-critical";
  if (alert.level === "warning" || alert.event === "runs_out" || alert.event === "drift") return "badge-warning";
  if (alert.event === "recovered") return "badge-healthy";
  return "badge-info";
}

function deliveries(alert) {
  if (!alert.deliveries.length) return el("span", { className: "muted", text: "no channel" });
  return el("span", { className: "alert-deliveries" }, alert.deliveries.map(function (d) {
    var sent = d.status === "sent";
    return el("span", {
      className: "badge badge-small " + (sent ? "badge-neutral" : "badge-critical"),
      title: sent ? d.channel + ": sent" : d.channel + ": " + (d.error || "failed")
    }, [icon(sent ? "check" : "x"), d.channel]);
  }));
}

export function drawAlerts(alerts) {
  var list = $("alert-list");
  if (!list) return;
  // The view's providers only (Both: every alert).
  var shown = isBoth() ? alerts : alerts.filter(function (a) { return viewProviders().indexOf(a.provider) >= 0; });
  shown = shown.slice(0, SHOWN);
  list.replaceChildren();
  if (!shown.length) {
    list.appendChild(el("li", { className: "empty-state", text: "No alerts yet. Levels and channels are on the alert settings page." }));
    return;
  }
  shown.forEach(function (a) {
    list.appendChild(el("li", { className: "alert-item", dataset: { event: a.event } }, [
      el("span", { className: "badge " + badgeClass(a) }, [icon(ICONS[a.event] || "bell"), a.event.replace("_", " ") + (a.level ? " · " + a.level : "")]),
      el("div", { className: "alert-text" }, [
        el("strong", { text: a.title }),
        el("span", { className: "muted", text: a.message })
      ]),
      el("div", { className: "alert-meta" }, [el("time", { datetime: a.at, text: fmtSmart(a.at) }), deliveries(a)])
    ]));
  });
}
