// Now page: refresh the queue in place every few seconds (no framework, no build step).
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) return;
  var every = parseInt(live.dataset.poll || "1000", 10);
  function refresh() {
    fetch(live.dataset.src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (answer) {
        if (answer.status === 401) { window.location = "/login?next=/"; return null; }
        return answer.ok ? answer.text() : null;
      })
      .then(function (html) {
        // Keep keyboard focus where it was when the rows are replaced.
        if (html === null || html === undefined) return;
        var focused = document.activeElement && document.activeElement.getAttribute("href");
        live.innerHTML = html;
        if (focused) {
          var again = live.querySelector('a[href="' + focused + '"]');
          if (again) again.focus();
        }
      })
      .catch(function () { /* the next poll tries again */ })
      .finally(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
})();
