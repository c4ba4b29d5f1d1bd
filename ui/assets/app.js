// Custos web UI: progressive enhancement only. Every page works without
// this file; it adds a confirmation before destructive actions and live
// countdowns of deadlines.
"use strict";
(function () {
  // Forms marked data-confirm ask before they are sent (the server asks
  // again where it matters: an erasure needs the typed subject id).
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    var msg = f.getAttribute && f.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });
  // <time class="countdown" datetime="..."> counts down to its time.
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time.countdown[datetime]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("datetime"));
      if (isNaN(due)) return;
      var s = Math.round((due - now) / 1000), neg = s < 0;
      s = Math.abs(s);
      var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
      var txt = (d ? d + "d " : "") + h + "h " + m + "m";
      el.textContent = neg ? "overdue by " + txt : "due in " + txt;
      el.classList.toggle("overdue", neg);
      el.classList.toggle("soon", !neg && s < 3 * 86400);
    });
  }
  tick();
  setInterval(tick, 30000);
})();
