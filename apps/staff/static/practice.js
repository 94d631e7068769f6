// Practice results: each collector's scores over time as one line, from /api/practice/history, drawn with the
// vendored ECharts (no CDN, no inline script).
(function () {
  "use strict";
  var node = document.getElementById("chart-practice");
  if (!node || typeof echarts === "undefined") { return; }
  var chart = echarts.init(node, null, { renderer: "canvas" });

  function render(histories) {
    var option = {
      animation: false,
      tooltip: { trigger: "item", renderMode: "richText" },
      legend: { type: "scroll", bottom: 0 },
      grid: { left: 40, right: 24, top: 16, bottom: 56 },
      xAxis: { type: "time" },
      yAxis: { type: "value", min: 0, max: 100, name: "得分" },
      series: histories.map(function (history) {
        return {
          name: history.display_name,
          type: "line",
          symbolSize: 8,
          data: history.points.map(function (point) { return [point.ended_at, point.score]; })
        };
      })
    };
    chart.setOption(option);
    if (window.chartTable) { window.chartTable(node, option); }
    document.body.setAttribute("data-charts", "ready");
  }

  fetch(node.getAttribute("data-api"), { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    })
    .then(render)
    .catch(function (error) { node.textContent = "图表加载失败：" + error.message; });

  window.addEventListener("resize", function () { chart.resize(); });
}());
