// ldm-inspector sweep report: one line chart per spec, one trace per series, one shared y axis.
// Strings from the data reach the page only through Plotly's text rendering and textContent.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("sweep-data").textContent);
  data.charts.forEach(function (spec) {
    var el = document.getElementById("chart-" + spec.id);
    var traces = Object.keys(spec.series).map(function (name) {
      return { name: name, x: spec.x, y: spec.series[name], type: "scatter", mode: "lines+markers", connectgaps: false };
    });
    var layout = {
      margin: { l: 70, r: 16, t: 10, b: 50 },
      xaxis: { title: { text: spec.x_label }, type: "category", automargin: true },
      yaxis: { title: { text: spec.y_label }, automargin: true, rangemode: "tozero", exponentformat: "SI" },
      showlegend: true, legend: { orientation: "h", y: -0.3 }, font: { size: 11 }
    };
    try {
      Plotly.newPlot(el, traces, layout, { displayModeBar: false, responsive: true }).then(function () {
        el.closest("[data-chart]").setAttribute("data-rendered", "true");
      });
    } catch (err) { console.error("chart " + spec.id + ": " + err); }
  });
})();
