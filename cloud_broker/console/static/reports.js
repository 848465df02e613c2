// The report's chart (Chart.js, served by the console): the data is the JSON the page
// carries in #chart-data, so no script is written into the page.
document.addEventListener("DOMContentLoaded", function () {
  var el = document.getElementById("chart"), src = document.getElementById("chart-data");
  if (!el || !src || !window.Chart) return;
  var d = JSON.parse(src.textContent), rtl = document.documentElement.dir === "rtl";
  var fa = document.documentElement.lang === "fa";
  var fmt = new Intl.NumberFormat(fa ? "fa-IR" : "en-US");
  Chart.defaults.font.family = "Vazirmatn, sans-serif";
  var palette = ["#206bc4", "#f59f00", "#2fb344", "#d63939", "#ae3ec9", "#17a2b8"];
  var axis = { ticks: { callback: function (v) { return fmt.format(v); } } };
  new Chart(el, {
    type: d.type,
    data: {
      labels: d.labels,
      datasets: d.series.map(function (s, i) {
        return { label: s.label, data: s.data,
                 backgroundColor: d.type === "doughnut" ? palette : palette[i % palette.length] };
      })
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      indexAxis: d.horizontal ? "y" : "x",
      plugins: { legend: { rtl: rtl, position: "bottom" },
                 tooltip: { rtl: rtl, callbacks: { label: function (c) {
                   return c.dataset.label + ": " + fmt.format(c.parsed.y !== undefined && !d.horizontal ? c.parsed.y : (c.parsed.x !== undefined ? c.parsed.x : c.parsed)); } } } },
      scales: d.type === "doughnut" ? {} : {
        x: Object.assign({ stacked: d.stacked, reverse: rtl && !d.horizontal }, d.horizontal ? axis : {}),
        y: Object.assign({ stacked: d.stacked, position: rtl ? "right" : "left" }, d.horizontal ? {} : axis)
      }
    }
  });
  el.setAttribute("data-drawn", "1");
});
