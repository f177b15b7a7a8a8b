// Monitor dashboards: draw the page's chart from its JSON script tag with the vendored
// Chart.js (no inline script), then mark the canvas so tests can see it was drawn.
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("dashboard-data");
  const canvas = document.getElementById("dashboard-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const spec = JSON.parse(source.textContent);
  const colours = ["#0b6e4f", "#2f80ed", "#f2994a", "#b42318", "#9b51e0", "#56ccf2",
                   "#6fcf97", "#f2c94c", "#828282", "#eb5757", "#219653"];
  spec.datasets.forEach((set, i) => {
    set.borderColor = colours[i % colours.length];
    set.backgroundColor = colours[i % colours.length];
    set.tension = 0.2;
    set.pointRadius = 2;
  });
  const scales = {
    x: { stacked: Boolean(spec.stacked) },
    y: { stacked: Boolean(spec.stacked), beginAtZero: true },
  };
  if (spec.percent) scales.y.ticks = { callback: (value) => value + "%" };
  if (spec.datasets.some((set) => set.yAxisID === "y1")) {
    scales.y1 = { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } };
  }
  const chart = new Chart(canvas, {
    type: spec.type || "bar",
    data: { labels: spec.labels, datasets: spec.datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales,
    },
  });
  canvas.dataset.rendered = String(chart.data.labels.length);
});
