// The daily review's charts: read /api/review and draw them with the vendored ECharts (no CDN, no inline script).
(function () {
  "use strict";
  var range = document.getElementById("review-range");
  var status = document.getElementById("review-status");
  if (!range || typeof echarts === "undefined") { return; }
  var charts = [];

  function draw(id, option) {
    var node = document.getElementById(id);
    if (!node) { return; }
    var chart = echarts.init(node, null, { renderer: "canvas" });
    chart.setOption(Object.assign({ animation: false, tooltip: { trigger: "axis", renderMode: "richText" } }, option));
    if (window.chartTable) { window.chartTable(node, option); }
    charts.push(chart);
  }

  function label(map, key) { return (map && map[key]) || key; }

  function bars(id, counts, names, color) {
    var keys = Object.keys(counts);
    draw(id, {
      grid: { left: 40, right: 16, top: 16, bottom: 60 },
      xAxis: { type: "category", data: keys.map(function (key) { return label(names, key); }), axisLabel: { interval: 0, rotate: 20 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ type: "bar", data: keys.map(function (key) { return counts[key]; }), itemStyle: { color: color } }]
    });
  }

  function render(data) {
    var days = data.days.map(function (day) { return day.slice(5); });
    var intents = Object.keys(data.objections);
    draw("chart-objections", {
      legend: { type: "scroll", bottom: 0 },
      grid: { left: 40, right: 16, top: 16, bottom: 56 },
      xAxis: { type: "category", data: days },
      yAxis: { type: "value", minInterval: 1 },
      series: intents.map(function (intent) {
        return { name: label(data.labels.intents, intent), type: "bar", stack: "all", data: data.objections[intent] };
      })
    });
    bars("chart-escalations", data.escalations_by_reason, data.labels.reasons, "#c0504d");
    var promiseNames = { made: "新增", kept: "已兑现", broken: "已违约", open: "待兑现" };
    bars("chart-promises", data.promises, promiseNames, "#4f81bd");
    bars("chart-repairs", data.repairs_by_item, {}, "#9bbb59");
    draw("chart-times", {
      legend: { bottom: 0 },
      grid: { left: 48, right: 16, top: 16, bottom: 56 },
      xAxis: { type: "category", data: ["首次人工回复", "解决"] },
      yAxis: { type: "value", name: "分钟" },
      series: [
        { name: "中位数", type: "bar", data: [data.first_response.median_minutes, data.resolution.median_minutes] },
        { name: "90分位", type: "bar", data: [data.first_response.p90_minutes, data.resolution.p90_minutes] }
      ]
    });
    status.textContent = data.start + " 至 " + data.end;
    document.body.setAttribute("data-charts", "ready");
  }

  fetch(range.getAttribute("data-api"), { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    })
    .then(render)
    .catch(function (error) { status.textContent = "图表加载失败：" + error.message; });

  window.addEventListener("resize", function () { charts.forEach(function (chart) { chart.resize(); }); });
}());
