/* Applies the saved (or the system's) theme before first paint, and wires every
   [data-theme-toggle] button. Loaded synchronously in <head>: keep it tiny.
   On signed-in pages the theme is the user's own (<html data-user-theme>, saved
   with PUT /api/settings); this browser's last choice stands in until they pick one. */
(function () {
  "use strict";
  var KEY = "syntrack.theme";
  var root = document.documentElement;
  var own = root.getAttribute("data-user-theme"); // null where nobody is signed in

  function saved() {
    if (own === "dark" || own === "light") return own;
    try {
      var t = window.localStorage.getItem(KEY);
      return t === "dark" || t === "light" ? t : null;
    } catch (e) {
      return null; // storage blocked: follow the system
    }
  }

  function system() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function label(theme) {
    var next = theme === "dark" ? "light" : "dark";
    var buttons = document.querySelectorAll("[data-theme-toggle]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute("aria-label", "Switch to " + next + " theme");
      buttons[i].setAttribute("title", "Switch to " + next + " theme");
    }
  }

  function apply(theme) {
    root.setAttribute("data-theme", theme);
    root.style.colorScheme = theme;
  }

  function saveOwn(theme) {
    own = theme;
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (!window.fetch || !m) return;
    fetch(root.getAttribute("data-settings-url") || "/api/settings", {
      method: "PUT",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": decodeURIComponent(m[1]) },
      body: JSON.stringify({ theme: theme }),
    }).catch(function () { /* applied here all the same; saved next time */ });
  }

  apply(saved() || system());

  // Until the user picks a theme, follow the system live.
  if (window.matchMedia) {
    var mq = window.matchMedia("(prefers-color-scheme: dark)");
    var follow = function () {
      if (!saved()) {
        apply(system());
        label(system());
        document.dispatchEvent(new CustomEvent("syntrack:theme", { detail: system() }));
      }
    };
    if (mq.addEventListener) mq.addEventListener("change", follow);
  }

  document.addEventListener("DOMContentLoaded", function () {
    label(root.getAttribute("data-theme"));
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("[data-theme-toggle]") : null;
      if (!button) return;
      var theme = root.getAttribute("data-theme") === "dark" ? "light" : "dark";
      apply(theme);
      try {
        window.localStorage.setItem(KEY, theme);
      } catch (e) {
        /* not persisted; still applied */
      }
      label(theme);
      if (own !== null) saveOwn(theme);
      document.dispatchEvent(new CustomEvent("syntrack:theme", { detail: theme }));
    });
  });
})();
