// The QA page's chart: counts per day and kind, from the page's data attribute, drawn with the vendored
// ECharts (no CDN, no inline script).
(function () {
  "use strict";
  var node = document.getElementById("chart-quality");
  if (!node || typeof echarts === "undefined") { return; }
  var data;
  try { data = JSON.parse(node.getAttribute("data-chart")); } catch (error) { return; }
  var chart = echarts.init(node, null, { renderer: "canvas" });
  var option = {
    animation: false,
    tooltip: { trigger: "axis", renderMode: "richText" },
    legend: { type: "scroll", bottom: 0 },
    grid: { left: 40, right: 16, top: 16, bottom: 56 },
    xAxis: { type: "category", data: data.days.map(function (day) { return day.slice(5); }) },
    yAxis: { type: "value", minInterval: 1 },
    series: data.series.map(function (line) {
      return { name: line.name, type: "bar", stack: "all", data: line.counts };
    })
  };
  chart.setOption(option);
  if (window.chartTable) { window.chartTable(node, option); }
  document.body.setAttribute("data-charts", "ready");
  window.addEventListener("resize", function () { chart.resize(); });
}());
