// ldm-inspector report: draws the charts and the layer table from the embedded run data.
// Every string from the data goes through textContent, never innerHTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("run-data").textContent);
  // layers come as rows in data.layer_keys order (compact); make them objects again
  (data.components || []).forEach(function (c) {
    c.layers = c.layers.map(function (row) {
      var l = {}; data.layer_keys.forEach(function (k, i) { l[k] = row[i]; }); return l;
    });
  });

  // Numbers arrive formatted by the report writer (inspector.units), so they read the same as in
  // the terminal and the TUI; the raw values are only used to sort.

  // --- charts -------------------------------------------------------------------------
  function drawChart(spec) {
    var el = document.getElementById("chart-" + spec.id);
    var names = Object.keys(spec.series);
    var traces = names.map(function (name, i) {
      var trace = { name: name, x: spec.x.map(String), y: spec.series[name],
                    text: (spec.text || {})[name], hoverinfo: "x+text+name", textposition: "none" };
      if (spec.kind === "line") { trace.type = "scatter"; trace.mode = "lines+markers"; trace.x = spec.x; }
      else { trace.type = "bar"; }
      if (spec.kind === "line" && i === 1) trace.yaxis = "y2";  // a second series gets its own scale
      return trace;
    });
    var twoAxes = spec.kind === "line" && names.length > 1;
    // the legend sits above the plot, never over an axis title or tick labels
    var layout = {
      margin: { l: 60, r: twoAxes ? 60 : 16, t: names.length > 1 ? 34 : 10, b: 10 },
      barmode: spec.kind === "stacked" ? "stack" : "group",
      xaxis: { title: { text: spec.x_label || "", standoff: 8 }, automargin: true },
      yaxis: { title: { text: spec.y_label || names[0] || "", standoff: 8 }, automargin: true, separatethousands: true,
               exponentformat: "none", rangemode: "tozero" },
      showlegend: names.length > 1,
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom" },
      font: { size: 11 }
    };
    if (twoAxes) layout.yaxis2 = { overlaying: "y", side: "right", title: { text: names[1] }, automargin: true };
    return Plotly.newPlot(el, traces, layout, { displayModeBar: false, responsive: true }).then(function () {
      el.closest("[data-chart]").setAttribute("data-rendered", "true");
    });
  }
  data.charts.forEach(function (spec) {
    try { drawChart(spec); } catch (err) { console.error("chart " + spec.id + ": " + err); }
  });

  // --- layer table: sort, filter by name and type, fold by depth -------------------------
  if (!document.getElementById("layer-table")) return;  // the comparison page has none
  var compSelect = document.getElementById("layer-component");
  var filter = document.getElementById("layer-filter");
  var typeSelect = document.getElementById("layer-type");
  var depthSelect = document.getElementById("layer-depth");
  var tbody = document.querySelector("#layer-table tbody");
  var count = document.getElementById("layer-count");
  var sortKey = null, sortDir = 1;

  function option(select, value, label) {
    var o = document.createElement("option"); o.value = value; o.textContent = label; select.appendChild(o);
  }
  data.components.forEach(function (c, i) { option(compSelect, String(i), c.name); });

  function current() { return data.components[Number(compSelect.value)] || { layers: [] }; }
  function shapes(list) { return list.map(function (s) { return "(" + s.join(", ") + ")"; }).join(" "); }

  function resetControls() {
    var layers = current().layers, types = {}, maxDepth = 1;
    layers.forEach(function (l) { types[l.type] = true; maxDepth = Math.max(maxDepth, l.depth); });
    typeSelect.length = 1;
    Object.keys(types).sort().forEach(function (t) { option(typeSelect, t, t); });
    depthSelect.length = 0;
    for (var d = 1; d <= maxDepth; d++) option(depthSelect, String(d), String(d));
    depthSelect.value = String(Math.min(2, maxDepth));
  }

  function render() {
    var text = filter.value.toLowerCase(), type = typeSelect.value, depth = Number(depthSelect.value);
    var rows = current().layers.filter(function (l) {
      return l.depth <= depth && (!type || l.type === type) && (!text || l.name.toLowerCase().indexOf(text) >= 0);
    });
    if (sortKey) rows = rows.slice().sort(function (a, b) {
      var x = a[sortKey], y = b[sortKey];
      if (Array.isArray(x)) { x = JSON.stringify(x); y = JSON.stringify(y); }
      if (x === null) return 1; if (y === null) return -1;
      return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (l) {
      var tr = document.createElement("tr");
      [l.name, l.type, l.depth, shapes(l.input_shapes), shapes(l.output_shapes), l.parameters_text,
       l.flops_text, l.calls].forEach(function (value, i) {
        var td = document.createElement("td"); td.textContent = String(value);
        if (i === 0) td.style.paddingLeft = (l.depth - 1) * 12 + "px";
        if (i === 2 || i >= 5) td.className = "num";
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    });
    tbody.textContent = "";
    tbody.appendChild(frag);
    count.textContent = rows.length + " of " + current().layers.length + " layers";
  }

  document.querySelectorAll("#layer-table th").forEach(function (th) {
    th.addEventListener("click", function () {
      var key = th.getAttribute("data-key");
      sortDir = sortKey === key ? -sortDir : 1; sortKey = key;
      document.querySelectorAll("#layer-table th").forEach(function (h) { h.className = h.className.replace(/ ?sorted-(asc|desc)/, ""); });
      th.className += sortDir > 0 ? " sorted-asc" : " sorted-desc";
      render();
    });
  });
  compSelect.addEventListener("change", function () { resetControls(); render(); });
  [filter, typeSelect, depthSelect].forEach(function (el) { el.addEventListener("input", render); el.addEventListener("change", render); });
  if (data.components.length) { resetControls(); render(); }
})();
