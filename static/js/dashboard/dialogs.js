/* SynTrack dashboard · dialogs: the change-password and timezone dialogs.
   Every value from the API goes in through textContent or attributes, never innerHTML. */
import { $, BROWSER_TZ, state, el, icon, api, saveSettings, resetDateFormats } from "./core.js";
import { renderTabs } from "./status.js";
import { destroyCharts } from "./chart.js";


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

export function setupPassword() {
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

// onSaved: the page's full refresh (main.js), run once the new zone is stored.
export function setupTimezone(onSaved) {
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
        resetDateFormats();
        renderTabs();
        destroyCharts();
        onSaved();
      })
      .catch(function (err) { showMessage(error, err.message || "Could not save the timezone."); });
  });
}
