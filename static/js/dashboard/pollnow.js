/* SynTrack dashboard · poll now: asks the running poller to poll the providers on screen at
   once (POST /api/poll), waits for that poll to land, then refreshes the page. */
import { $, state, ms, api, report } from "./core.js";

// Asked polls land within seconds (the poller checks for requests every second); the page
// looks every WATCH_EVERY ms and gives up after WATCH_FOR ms, leaving it to the next refresh.
var WATCH_EVERY = 1500;
var WATCH_FOR = 30e3;

function say(text, kind) {
  var box = $("poll-message");
  box.querySelector(".banner-text").textContent = text;
  box.className = "banner banner-" + kind;
}

function setBusy(busy) {
  var btn = $("poll-now-btn");
  btn.disabled = busy;
  btn.setAttribute("aria-busy", busy ? "true" : "false");
  btn.querySelector(".label").textContent = busy ? "Polling…" : "Poll now";
  btn.classList.toggle("spinning", busy);
}

// Every provider asked has a poll attempt at or after the request, and no request pending.
function landed(providers, asked, requestedAt) {
  return asked.every(function (pid) {
    var p = providers.filter(function (x) { return x.id === pid; })[0];
    return p && !p.poll_requested_at && ms(p.last_poll_at) !== null && ms(p.last_poll_at) >= requestedAt;
  });
}

function watch(asked, requestedAt, onLanded) {
  var until = Date.now() + WATCH_FOR;
  return new Promise(function (resolve) {
    function look() {
      api("/api/providers").then(function (d) {
        if (landed(d.providers || [], asked, requestedAt)) return resolve(true);
        if (Date.now() > until) return resolve(false);
        window.setTimeout(look, WATCH_EVERY);
      }).catch(function (err) {
        report(err);
        resolve(null);
      });
    }
    window.setTimeout(look, WATCH_EVERY);
  }).then(function (ok) {
    if (ok) {
      $("poll-message").classList.add("hidden");
      return onLanded();
    }
    if (ok === null) say("Lost touch with the server while waiting for the poll; the page will show it at its next refresh.", "error");
    else say("The poller has not answered within " + WATCH_FOR / 1000 + " s; the page will show its poll at the next refresh.", "info");
  });
}

// onLanded: the page's full refresh (main.js).
export function setupPollNow(onLanded) {
  var btn = $("poll-now-btn");
  $("poll-message-close").addEventListener("click", function () { $("poll-message").classList.add("hidden"); });
  btn.addEventListener("click", function () {
    setBusy(true);
    $("poll-message").classList.add("hidden");
    api("/api/poll", { method: "POST", body: { provider: state.provider } })
      .then(function (res) {
        return watch(res.providers || [], ms(res.requested_at), onLanded);
      })
      .catch(function (err) {
        if (err.status === 409) {
          // "no poller is running: start it with `manage.py poll` …", as the server words it.
          say(err.message.charAt(0).toUpperCase() + err.message.slice(1) + ".", "warning");
        } else {
          report(err);
          say("Could not ask for a poll (" + err.message + "). Try again later.", "error");
        }
      })
      .then(function () { setBusy(false); });
  });
}
