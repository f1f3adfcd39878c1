/* Login page: show/hide the password. */
(function () {
  "use strict";
  var toggle = document.getElementById("toggle-password");
  var input = document.getElementById("id_password");
  if (!toggle || !input) return;
  toggle.addEventListener("click", function () {
    var show = input.type === "password";
    input.type = show ? "text" : "password";
    toggle.setAttribute("aria-pressed", show ? "true" : "false");
    toggle.setAttribute("aria-label", show ? "Hide password" : "Show password");
    toggle.querySelector("use").setAttribute("href", show ? "#i-eye-off" : "#i-eye");
    input.focus();
  });
})();
