// Draws each <figure class="chart"> from the JSON beside it: {title, x: [epoch s], series: [{label, values}]}.
(function () {
  "use strict";
  var colors = ["#1f5fbf", "#c2571a", "#2b8a3e", "#7b3fb5", "#b0245c", "#56616e"];
  function draw(figure) {
    var data = JSON.parse(document.getElementById(figure.dataset.chart).textContent);
    if (!data.x.length) {
      var empty = document.createElement("p");
      empty.textContent = "No data in the period.";
      figure.appendChild(empty);
      return;
    }
    var series = [{}];
    var columns = [data.x];
    data.series.forEach(function (one, index) {
      series.push({ label: one.label, stroke: colors[index % colors.length], width: 2 });
      columns.push(one.values);
    });
    var width = Math.max(320, Math.min(figure.clientWidth || 900, 1100));
    new uPlot({ width: width, height: 260, series: series, scales: { x: { time: true } } }, columns, figure);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("figure.chart").forEach(draw);
  });
})();
