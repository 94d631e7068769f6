// A table beside every chart, for people who cannot see the picture (screen readers, a copied figure):
// window.chartTable(node, option) puts the option's data under the chart, in a <details> the eye can skip.
// Category charts get one row per category and one column per series; time-series charts one row per point.
(function () {
  "use strict";

  function cell(tag, text) {
    var node = document.createElement(tag);
    node.textContent = text === null || text === undefined ? "" : String(text);
    return node;
  }

  function row(tag, values) {
    var tr = document.createElement("tr");
    values.forEach(function (value, index) { tr.appendChild(cell(index === 0 && tag === "td" ? "th" : tag, value)); });
    return tr;
  }

  window.chartTable = function (node, option, caption) {
    var holder = node.closest("figure") || node.parentNode;
    var old = holder.querySelector("details.chart-table");
    if (old) { old.parentNode.removeChild(old); }
    var series = option.series || [];
    var table = document.createElement("table");
    table.className = "grid";
    if (caption) { table.appendChild(cell("caption", caption)); }
    var head = document.createElement("thead");
    var body = document.createElement("tbody");
    var categories = option.xAxis && option.xAxis.data;
    if (categories) {
      head.appendChild(row("th", [""].concat(series.map(function (line, index) { return line.name || ("数值" + (index + 1)); }))));
      categories.forEach(function (category, index) {
        body.appendChild(row("td", [category].concat(series.map(function (line) { return line.data[index]; }))));
      });
    } else {
      head.appendChild(row("th", ["名称", "时间", "数值"]));
      series.forEach(function (line) {
        line.data.forEach(function (point) { body.appendChild(row("td", [line.name, point[0], point[1]])); });
      });
    }
    table.appendChild(head);
    table.appendChild(body);
    var details = document.createElement("details");
    details.className = "chart-table";
    details.appendChild(cell("summary", "查看数据表"));
    details.appendChild(table);
    holder.appendChild(details);
  };
}());
