// waconnect dashboard: small progressive enhancements. Every page works without this file;
// with it, copy buttons copy, header rows can be added and removed, and optional fields hide
// until their switch is on.
(function () {
  "use strict";

  function announce(button, text) {
    var original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = text;
    setTimeout(function () { button.textContent = original; }, 1500);
  }

  function copyFrom(button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    var text = "value" in source && source.tagName !== "PRE" ? source.value : source.textContent;
    function fallback() {
      // Plain http on another host has no clipboard API: select the text instead.
      if (source.select) { source.focus(); source.select(); }
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      announce(button, ok ? "Copied" : "Press Ctrl+C");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { announce(button, "Copied"); }, fallback);
    } else {
      fallback();
    }
  }

  var rowCount = 1000;
  function addRow(button) {
    var container = document.getElementById(button.dataset.addRow);
    var template = document.getElementById(button.dataset.addRow + "-template");
    if (!container || !template) return;
    var row = template.content.firstElementChild.cloneNode(true);
    rowCount += 1;
    row.querySelectorAll(".field").forEach(function (field) {
      var input = field.querySelector("input, select, textarea");
      var label = field.querySelector("label");
      input.id = "f-row-" + rowCount + "-" + input.name.replace(".", "-");
      label.htmlFor = input.id;
    });
    container.appendChild(row);
    row.querySelector("input, select").focus();
    if (window.htmx) window.htmx.process(row);
  }

  function removeRow(button) {
    var row = button.closest("[data-row]");
    var container = row && row.parentElement;
    if (!row) return;
    if (container.querySelectorAll("[data-row]").length === 1) {
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      row.querySelector("input").focus();
      return;
    }
    var next = row.nextElementSibling || row.previousElementSibling;
    var form = row.closest("form");
    row.remove();
    // The live preview follows the form: a removed row is a change too.
    if (form) form.dispatchEvent(new Event("change", { bubbles: true }));
    if (next) next.querySelector("input").focus();
  }

  // data-show-if="name" (a checkbox) or "name=value" (a radio group): hide until it holds.
  function updateShown(form) {
    form.querySelectorAll("[data-show-if]").forEach(function (block) {
      var rule = block.dataset.showIf.split("=");
      var inputs = form.querySelectorAll('[name="' + rule[0] + '"]');
      var on = false;
      inputs.forEach(function (input) {
        if (input.tagName === "SELECT") { if (input.value === rule[1]) on = true; }
        else if (input.checked && (rule.length === 1 || input.value === rule[1])) on = true;
      });
      block.hidden = !on;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.copy) copyFrom(button);
    else if (button.dataset.openDialog) {
      var dialog = document.getElementById(button.dataset.openDialog);
      if (dialog && dialog.showModal) { dialog.showModal(); var first = dialog.querySelector("textarea, input:not([type=hidden]), select"); if (first) first.focus(); }
    }
    else if ("closeDialog" in button.dataset) { var open = button.closest("dialog"); if (open) open.close(); }
    else if (button.dataset.addRow) addRow(button);
    else if ("removeRow" in button.dataset) removeRow(button);
  });

  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form) updateShown(form);
  });

  // A campaign's statuses over time (Chart.js, vendored): refreshed while the campaign moves.
  var COLORS = { sent: "#0b7a6e", delivered: "#2e7d32", read: "#1565c0", failed: "#b3261e" };
  function drawChart(canvas) {
    var chart = null;
    function load() {
      fetch(canvas.dataset.chartUrl, { credentials: "same-origin" })
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (data) {
          if (!data) return;
          var datasets = Object.keys(data.series).map(function (name) {
            return { label: name, data: data.series[name], borderColor: COLORS[name], backgroundColor: COLORS[name], tension: 0.2, pointRadius: 0 };
          });
          if (chart) {
            chart.data.labels = data.labels;
            chart.data.datasets.forEach(function (set, i) { set.data = datasets[i].data; });
            chart.update("none");
          } else {
            chart = new window.Chart(canvas, {
              type: "line",
              data: { labels: data.labels, datasets: datasets },
              options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
            });
          }
          if (document.querySelector("#campaign-live[hx-get]")) setTimeout(load, 3000);
        });
    }
    load();
  }

  // The preview's limited-time-offer countdown ticks as the customer's phone shows it.
  function tickCountdowns() {
    document.querySelectorAll("[data-countdown] span").forEach(function (clock) {
      var parts = clock.textContent.split(":").map(Number);
      var left = Math.max(parts[0] * 3600 + parts[1] * 60 + parts[2] - 1, 0);
      var pad = function (n) { return (n < 10 ? "0" : "") + n; };
      clock.textContent = pad(Math.floor(left / 3600)) + ":" + pad(Math.floor(left / 60) % 60) + ":" + pad(left % 60);
    });
  }
  setInterval(tickCountdowns, 1000);

  document.addEventListener("DOMContentLoaded", function () {
    var canvas = document.querySelector("canvas[data-chart-url]");
    if (canvas && window.Chart) drawChart(canvas);
    document.querySelectorAll("form").forEach(updateShown);
    // /templates/7#send-test opens the test dialog (the provider page links there).
    var wanted = location.hash && document.getElementById(location.hash.slice(1));
    if (wanted && wanted.tagName !== "DIALOG") wanted = null;
    var opener = wanted && document.querySelector('[data-open-dialog="' + wanted.id + '"]:not([disabled])');
    if (opener) opener.click();
    var summary = document.querySelector("[data-autofocus]");
    if (summary) summary.focus();
  });
})();
