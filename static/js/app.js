/* servicedesk: small progressive enhancements. Every page works without this file; no inline
   scripts or handlers are needed (Content-Security-Policy without 'unsafe-inline'). */
(function () {
  "use strict";

  function $all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  /* --- Live countdown to SLA deadlines -------------------------------------------------- */
  // The server renders <span data-countdown="ISO"><time>due in 3 h 20 min</time></span>;
  // this keeps the words current and turns the badge to "Breached" when the deadline passes.
  function span(ms, units) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var d = Math.floor(minutes / 1440), h = Math.floor((minutes % 1440) / 60), m = minutes % 60;
    if (d) return d + " " + units[0] + (h ? " " + h + " " + units[1] : "");
    if (h) return h + " " + units[1] + (m ? " " + m + " " + units[2] : "");
    if (m) return m + " " + units[2];
    return units[3];
  }

  function tickCountdowns() {
    var now = Date.now();
    $all("[data-countdown]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-countdown"));
      if (isNaN(due)) return;
      var units = (el.getAttribute("data-units") || "d|h|min|<1 min").split("|");
      var left = due - now;
      var overdue = left <= 0;
      var template = el.getAttribute(overdue ? "data-overdue-text" : "data-due-text") || "%(span)s";
      var time = el.querySelector("time");
      if (time) time.textContent = template.replace("%(span)s", span(left, units));
      if (overdue && !el.classList.contains("overdue")) {
        el.classList.add("overdue");
        var badge = el.parentNode && el.parentNode.querySelector(".badge.sla");
        var breached = el.getAttribute("data-breached-text");
        if (badge && breached && !badge.classList.contains("sla-breached")) {
          badge.className = "badge sla sla-breached";
          badge.textContent = "";
          var icon = document.createElement("span");
          icon.setAttribute("aria-hidden", "true");
          icon.textContent = "✖";
          badge.appendChild(icon);
          badge.appendChild(document.createTextNode(" " + breached));
        }
      }
    });
  }

  /* --- Markdown preview through the server's sanitiser ---------------------------------- */
  function setupPreview() {
    $all("[data-preview-for]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        var textarea = document.getElementById(button.getAttribute("data-preview-for"));
        var pane = document.getElementById(button.getAttribute("data-preview-for") + "_preview");
        var form = button.form;
        if (!textarea || !pane || !form) return;
        var token = form.querySelector("input[name=csrfmiddlewaretoken]");
        var body = new URLSearchParams();
        body.append("text", textarea.value);
        button.disabled = true;
        fetch(button.getAttribute("data-preview-url"), {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRFToken": token ? token.value : "", "Content-Type": "application/x-www-form-urlencoded" },
          body: body.toString()
        }).then(function (response) {
          return response.text().then(function (html) { return { ok: response.ok, html: html }; });
        }).then(function (result) {
          if (result.ok) {
            // Sanitised by tickets/markdown.py (nh3), the same code that renders saved text.
            pane.innerHTML = result.html;
          } else {
            pane.textContent = result.html;
          }
          pane.hidden = false;
        }).catch(function () {
          pane.textContent = "⚠";
          pane.hidden = false;
        }).then(function () {
          button.disabled = false;
        });
      });
    });
  }

  /* --- Reply form: public reply vs internal note ---------------------------------------- */
  function setupVisibility() {
    $all("input[name=visibility]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        var form = radio.form;
        var internal = form.querySelector("input[name=visibility][value=internal]").checked;
        form.classList.toggle("is-internal", internal);
        var submit = form.querySelector(".form-actions button[type=submit]");
        if (submit) {
          submit.textContent = submit.getAttribute(internal ? "data-label-internal" : "data-label-public");
        }
      });
    });
  }

  /* --- New request: priority only where the service lets requesters choose -------------- */
  function setupServicePriority() {
    var service = document.querySelector("select[name=service][id=id_service]");
    var priority = document.getElementById("id_priority");
    if (!service || !priority) return;
    var panel = document.querySelector("[data-promise-panel]");
    function showPromise(option) {
      if (!panel || !option || !option.hasAttribute("data-promise-first")) return;
      var department = panel.querySelector("[data-promise-department-text]");
      var first = panel.querySelector("[data-promise-first-text]");
      var resolution = panel.querySelector("[data-promise-resolution-text]");
      if (department) {
        department.textContent = department.getAttribute("data-template")
          .replace("%(department)s", option.getAttribute("data-promise-department"));
      }
      if (first) first.textContent = option.getAttribute("data-promise-first");
      if (resolution) {
        resolution.textContent = option.getAttribute("data-promise-resolution");
        resolution.hidden = !resolution.textContent;
      }
    }
    function sync() {
      var option = service.options[service.selectedIndex];
      var mayChoose = !option || option.getAttribute("data-priority-choice") !== "0";
      priority.disabled = !mayChoose;
      if (!mayChoose) priority.value = "";
      showPromise(option);
    }
    service.addEventListener("change", sync);
    sync();
  }

  /* --- Attachments: tell about size/type limits before uploading ------------------------ */
  function setupFileChecks() {
    $all("input[type=file][data-max-bytes]").forEach(function (input) {
      var feedback = document.getElementById(input.id + "_feedback");
      input.addEventListener("change", function () {
        var max = parseInt(input.getAttribute("data-max-bytes"), 10);
        var allowed = (input.getAttribute("data-allowed-types") || "").split(" ");
        var problems = [];
        Array.prototype.forEach.call(input.files, function (file) {
          if (file.size > max) {
            problems.push(file.name + ": " + Math.ceil(file.size / 1048576) + " MB > " + Math.floor(max / 1048576) + " MB");
          } else if (file.type && allowed.indexOf(file.type) === -1) {
            problems.push(file.name + ": " + file.type);
          }
        });
        if (feedback) {
          feedback.textContent = problems.length ? "⚠ " + problems.join("; ") : "";
        }
        input.setAttribute("aria-invalid", problems.length ? "true" : "false");
      });
    });
  }

  /* --- Queue: select all, count, show only the bulk fields the action needs ------------- */
  function setupBulk() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var all = document.getElementById("select-all");
    var boxes = $all("input[name=tickets]", form);
    var count = form.querySelector("[data-bulk-count]");
    function update() {
      var n = boxes.filter(function (b) { return b.checked; }).length;
      if (count) count.textContent = n ? "(" + n + ")" : "";
      if (all) all.checked = n > 0 && n === boxes.length;
    }
    if (all) {
      all.hidden = false;
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
        update();
      });
    }
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    var action = document.getElementById("bulk-action");
    var assignee = document.getElementById("bulk-assignee");
    var status = document.getElementById("bulk-status");
    function syncAction() {
      if (assignee) assignee.closest(".field").hidden = action.value !== "assign";
      if (status) status.closest(".field").hidden = action.value !== "status";
    }
    if (action) {
      action.addEventListener("change", syncAction);
      syncAction();
    }
    update();
  }

  /* --- Catalogue: filter the cards while typing (the form still searches the server) ---- */
  function setupLiveFilter() {
    $all("input[data-live-filter]").forEach(function (input) {
      var selector = input.getAttribute("data-live-filter");
      var status = input.form && input.form.querySelector("[data-live-filter-status]");
      input.addEventListener("input", function () {
        var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
        var shown = 0;
        $all(selector).forEach(function (card) {
          var text = card.getAttribute("data-search") || "";
          var match = words.every(function (w) { return text.indexOf(w) !== -1; });
          card.hidden = !match;
          if (match) shown += 1;
        });
        $all(".department").forEach(function (section) {
          section.hidden = $all(selector, section).every(function (card) { return card.hidden; });
        });
        if (status) {
          var template = status.getAttribute("data-count-text") || "%(n)s";
          status.textContent = words.length ? template.replace("%(n)s", shown) : "";
        }
      });
    });
  }

  /* --- Lists: on a phone, fold the filters away unless some are in use --------------------- */
  function setupFilterFold() {
    if (!window.matchMedia("(max-width: 700px)").matches) return;
    $all("details[data-collapse-on-phone='1']").forEach(function (details) {
      details.open = false;
    });
  }

  function focusErrors() {
    var summary = document.querySelector("[data-autofocus]");
    if (summary) summary.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupPreview();
    setupVisibility();
    setupServicePriority();
    setupFileChecks();
    setupBulk();
    setupLiveFilter();
    setupFilterFold();
    focusErrors();
    tickCountdowns();
    window.setInterval(tickCountdowns, 15000);
  });
})();
