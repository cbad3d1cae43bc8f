/* Dashboards: draw the charts with the vendored Chart.js (static/vendor/chart.js).
   Data comes from <script type="application/json"> blocks written by Django's json_script; no
   inline scripts. Every chart stays readable without colour: datasets get distinct patterns
   (stripes, dots, cross-hatch) and line styles, and bars carry their values as labels. A data
   table follows every chart. Also polls the progress of background CSV exports. */
(function () {
  "use strict";

  var PALETTE = ["#0b57d0", "#a4161a", "#1e6b36", "#8a4b00"];
  var PATTERNS = ["diagonal", "dots", "cross", "none"];
  var DASHES = [[], [8, 4], [2, 3], [12, 3, 3, 3]];

  function pattern(kind, colour) {
    var size = 10;
    var canvas = document.createElement("canvas");
    canvas.width = size;
    canvas.height = size;
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = colour;
    ctx.globalAlpha = 0.35;
    ctx.fillRect(0, 0, size, size);
    ctx.globalAlpha = 1;
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 2;
    if (kind === "diagonal") {
      ctx.beginPath();
      ctx.moveTo(0, size);
      ctx.lineTo(size, 0);
      ctx.moveTo(-2, 2);
      ctx.lineTo(2, -2);
      ctx.moveTo(size - 2, size + 2);
      ctx.lineTo(size + 2, size - 2);
      ctx.stroke();
    } else if (kind === "dots") {
      ctx.beginPath();
      ctx.arc(size / 2, size / 2, 2, 0, 2 * Math.PI);
      ctx.fill();
    } else if (kind === "cross") {
      ctx.beginPath();
      ctx.moveTo(0, size / 2);
      ctx.lineTo(size, size / 2);
      ctx.moveTo(size / 2, 0);
      ctx.lineTo(size / 2, size);
      ctx.stroke();
    } else {
      ctx.globalAlpha = 0.75;
      ctx.fillRect(0, 0, size, size);
    }
    return ctx.createPattern(canvas, "repeat");
  }

  // Write each bar's value above it, so the chart reads without telling colours apart.
  var valueLabels = {
    id: "sdValueLabels",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx;
      ctx.save();
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillStyle = "#18202a";
      ctx.textAlign = "center";
      chart.data.datasets.forEach(function (dataset, i) {
        var meta = chart.getDatasetMeta(i);
        if (meta.hidden || meta.type !== "bar") return;
        meta.data.forEach(function (element, j) {
          var value = dataset.data[j];
          if (value === null || value === 0 || value === undefined) return;
          ctx.fillText(String(value), element.x, element.y - 3);
        });
      });
      ctx.restore();
    }
  };

  function build(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source || !window.Chart) return;
    var spec = JSON.parse(source.textContent);
    var hasPercent = spec.datasets.some(function (d) { return d.axis === "percent"; });
    var datasets = spec.datasets.map(function (d, i) {
      var colour = PALETTE[i % PALETTE.length];
      var base = {
        label: d.label,
        data: d.data,
        yAxisID: d.axis === "percent" ? "percent" : "count",
        borderColor: colour
      };
      if (d.kind === "line") {
        return Object.assign(base, {
          type: "line",
          backgroundColor: colour,
          borderDash: DASHES[i % DASHES.length],
          borderWidth: 2,
          pointStyle: ["circle", "rect", "triangle", "rectRot"][i % 4],
          pointRadius: 4,
          spanGaps: true
        });
      }
      return Object.assign(base, {
        type: "bar",
        backgroundColor: pattern(PATTERNS[i % PATTERNS.length], colour),
        borderWidth: 1
      });
    });
    var scales = {
      count: { type: "linear", position: "left", beginAtZero: true, ticks: { precision: 0 },
               title: { display: true, text: canvas.getAttribute("data-count-label") || "#" } }
    };
    if (hasPercent) {
      scales.percent = { type: "linear", position: "right", min: 0, max: 100,
                         grid: { drawOnChartArea: false }, title: { display: true, text: "%" } };
    }
    canvas.chart = new window.Chart(canvas, {
      type: "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { usePointStyle: false } } },
        scales: scales
      },
      plugins: [valueLabels]
    });
    canvas.setAttribute("data-rendered", "true");
  }

  function pollExport(box) {
    var url = box.getAttribute("data-export-status");
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-export-text]");
    var download = box.querySelector("[data-export-download]");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          bar.value = data.percent;
          bar.textContent = data.percent + " %";
          text.textContent = data.label + " · " + data.done + " / " + data.total;
          if (data.state === "done") {
            download.hidden = false;
            if (data.download) download.querySelector("a").href = data.download;
          } else if (data.state !== "failed") {
            window.setTimeout(tick, 1000);
          } else {
            text.textContent = data.label + (data.error ? ": " + data.error : "");
          }
        })
        .catch(function () { window.setTimeout(tick, 3000); });
    }
    tick();
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-chart]"), build);
    Array.prototype.forEach.call(document.querySelectorAll("[data-export-status]"), pollExport);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
