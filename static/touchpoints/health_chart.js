// Channel health chart: reads its data from the page's JSON script tag (no inline script,
// so a strict content security policy can forbid inline code) and draws it with the
// vendored Chart.js.
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("health-data");
  const canvas = document.getElementById("health-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const colours = ["#0b6e4f", "#2f80ed", "#f2994a", "#b42318"];
  data.datasets.forEach((set, i) => {
    set.borderColor = colours[i % colours.length];
    set.backgroundColor = colours[i % colours.length];
    set.tension = 0.2;
    set.pointRadius = 2;
  });
  const chart = new Chart(canvas, {
    type: "line",
    data,
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
  canvas.dataset.rendered = String(chart.data.labels.length);
});
