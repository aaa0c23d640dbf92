// Throughline console: the one script. It only reveals the sign-out warning
// two minutes before the idle logoff (WCAG 2.2.1); every control works
// without it. No PHI is read or stored here.
(function () {
  'use strict';
  var body = document.body;
  var endsAt = Number(body.getAttribute('data-ends-at') || '0');
  var warning = document.getElementById('session-warning');
  if (!endsAt || !warning) { return; }
  var skew = Date.now() - Number(body.getAttribute('data-now') || Date.now());
  function tick() {
    var left = endsAt + skew - Date.now();
    if (left <= 120000) {
      warning.classList.remove('hidden');
      var s = Math.max(0, Math.round(left / 1000));
      var text = document.getElementById('session-warning-text');
      if (text) { text.textContent = 'You will be signed out in ' + Math.floor(s / 60) + ' min ' + (s % 60) + ' s.'; }
    }
    if (left <= 0) { window.location.assign('/login?ended=idle'); return; }
    window.setTimeout(tick, 1000);
  }
  tick();
}());
