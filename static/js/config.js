/* servicedesk configuration pages: progressive enhancements only (the pages work without).
   - "Add a level" on the escalation ladder clones the empty level form.
   - A background what-if replay shows its progress and links to the result when done. */
(function () {
  "use strict";

  function setupLadder() {
    var button = document.querySelector("[data-ladder-add]");
    var rows = document.querySelector("[data-ladder-rows]");
    var template = document.getElementById("ladder-empty");
    var total = document.getElementById("id_ladder-TOTAL_FORMS");
    if (!button || !rows || !template || !total) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      var holder = document.createElement("div");
      holder.innerHTML = html.replace(/Level \+/, "Level " + (index + 1));
      var level = holder.firstElementChild;
      rows.appendChild(level);
      total.value = String(index + 1);
      var first = level.querySelector("select, input");
      if (first) first.focus();
    });
  }

  function pollJob(box) {
    var url = box.getAttribute("data-job-status");
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-job-text]");
    var link = box.querySelector("[data-job-link]");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (job) {
          if (!job) return;
          bar.value = job.percent;
          bar.textContent = job.percent + " %";
          text.textContent = job.label + " · " + job.done + " / " + job.total;
          if (job.status === "done") {
            if (link) link.focus();
            if (document.body.classList.contains("job-page")) window.location.reload();
            return;
          }
          if (job.status !== "failed") window.setTimeout(tick, 1000);
        })
        .catch(function () { window.setTimeout(tick, 3000); });
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupLadder();
    Array.prototype.forEach.call(document.querySelectorAll("[data-job-status]"), pollJob);
  });
})();
