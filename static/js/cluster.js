/* Cluster page: the profile against the catalog, one bar per feature (σ). */
(function () {
  "use strict";
  var data = MC.pageData();
  var el = document.getElementById("profile-chart");
  if (!el || !data.z) return;
  var rows = (data.features || [])
    .map(function (f) {
      var stat = (data.stats || {})[f.name] || {};
      return { name: f.name, label: f.label || f.name, z: data.z[f.name] || 0, mean: (data.centroid || {})[f.name], catalog: stat.mean };
    })
    .sort(function (a, b) { return a.z - b.z; });
  Plotly.newPlot(el, [{
    type: "bar",
    orientation: "h",
    y: rows.map(function (r) { return r.label; }),
    x: rows.map(function (r) { return r.z; }),
    marker: { color: rows.map(function (r) { return r.z >= 0 ? data.colour : "#9aa1ad"; }) },
    text: rows.map(function (r) {
      return "cluster " + MC.esc(MC.formatFeature(r.name, r.mean)) + " · catalog " + MC.esc(MC.formatFeature(r.name, r.catalog));
    }),
    textposition: "none",
    hovertemplate: "<b>%{y}</b>: %{x:+.2f} σ<br>%{text}<extra></extra>",
  }], {
    height: 360, margin: { l: 120, r: 16, t: 10, b: 44 }, font: MC.fontLayout, showlegend: false,
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
    xaxis: { title: { text: "difference from the catalog average (σ)" }, zeroline: true, zerolinecolor: "#444" },
  }, MC.plotConfig);
})();
