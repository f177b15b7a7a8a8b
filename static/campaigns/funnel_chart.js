// Funnel and campaign-comparison charts: read from the page's JSON script tag (no inline
// script, so a strict content security policy can forbid inline code), drawn with the
// vendored Chart.js.
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("funnel-data");
  const canvas = document.getElementById("funnel-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const colours = ["#0b6e4f", "#2f80ed", "#f2994a", "#b42318", "#6c5ce7"];
  data.datasets.forEach((set, i) => {
    set.backgroundColor = colours[i % colours.length];
    set.borderColor = colours[i % colours.length];
  });
  const chart = new Chart(canvas, {
    type: data.type || "bar",
    data: { labels: data.labels, datasets: data.datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { display: data.datasets.length > 1 } },
      scales: { y: { beginAtZero: true } },
    },
  });
  canvas.dataset.rendered = String(chart.data.labels.length);
});
