// ldm-inspector sweep report: one line chart per spec, one trace per series, one shared y axis.
// Strings from the data reach the page only through Plotly's text rendering and textContent.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("sweep-data").textContent);
  var ROW = 18;  // px per legend entry
  data.charts.forEach(function (spec) {
    var el = document.getElementById("chart-" + spec.id);
    var names = Object.keys(spec.series);
    var flagged = spec.flagged || {};
    var traces = names.map(function (name) {
      var marks = flagged[name] || [];
      // a flagged figure (unstable, or taken on a busy machine) is an open x, its reason on hover
      return { name: name, x: spec.x, y: spec.series[name], type: "scatter", mode: "lines+markers", connectgaps: false,
               marker: { symbol: spec.x.map(function (_, i) { return marks[i] ? "x-open" : "circle"; }),
                         size: spec.x.map(function (_, i) { return marks[i] ? 11 : 6; }) },
               text: spec.x.map(function (_, i) { return marks[i] ? "! not a fact: " + marks[i] : ""; }),
               hovertemplate: "%{y}<br>%{text}<extra>%{fullData.name}</extra>" };
    });
    var values = [];
    names.forEach(function (n) { spec.series[n].forEach(function (v) { if (v > 0) values.push(v); }); });
    var spread = values.length ? Math.max.apply(null, values) / Math.min.apply(null, values) : 1;
    // The legend sits below the plot, under the x axis title, in a bottom margin sized for it,
    // so it never covers an axis.
    var legendHeight = names.length > 1 ? names.length * ROW + 10 : 0;
    el.style.height = (275 + legendHeight) + "px";
    var layout = {
      margin: { l: 70, r: 16, t: 10, b: 58 + legendHeight },
      xaxis: { type: "category", automargin: false, title: { text: spec.x_label, standoff: 4 } },
      yaxis: { title: { text: spec.y_label + (spread > 100 ? " (log scale)" : "") }, automargin: true,
               type: spread > 100 ? "log" : "linear", rangemode: "tozero", exponentformat: "SI" },
      showlegend: names.length > 1,
      legend: { orientation: "v", x: 0, xanchor: "left", y: -58 / 207, yanchor: "top", font: { size: 11 } },
      font: { size: 11 }
    };
    try {
      Plotly.newPlot(el, traces, layout, { displayModeBar: false, responsive: true }).then(function () {
        el.closest("[data-chart]").setAttribute("data-rendered", "true");
      });
    } catch (err) { console.error("chart " + spec.id + ": " + err); }
  });
})();
