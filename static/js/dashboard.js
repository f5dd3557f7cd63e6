/* Dashboard: a small profile chart per cluster card, the catalog map, the k scan. */
(function () {
  "use strict";
  var data = MC.pageData();
  var features = data.features || [];
  var clusters = {};
  (data.clusters || []).forEach(function (c) { clusters[c.id] = c; });

  // Cards: how far each feature of the cluster sits from the catalog average (σ).
  document.querySelectorAll(".mini-chart").forEach(function (el) {
    var c = clusters[el.dataset.cluster];
    if (!c || !c.z) return;
    var names = features.map(function (f) { return f.name; });
    var z = names.map(function (n) { return c.z[n] || 0; });
    // One range for every card (computed by the page), so bars compare across cards.
    var reach = data.card_scale || 2.5;
    Plotly.newPlot(el, [{
      type: "bar",
      x: names.map(function (n) { return MC.FEATURE_SHORT[n] || n; }),
      y: z,
      marker: { color: z.map(function (v) { return v >= 0 ? c.colour : "#9aa1ad"; }) },
    }], {
      height: 130, margin: { l: 26, r: 4, t: 4, b: 46 }, font: { size: 9 }, showlegend: false,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      yaxis: { range: [-reach, reach], zeroline: true, zerolinecolor: "#888", tickvals: [-2, 0, 2], ticksuffix: "σ" },
      xaxis: { tickangle: -50 },
    }, MC.staticConfig);
  });

  // The map of the catalog sample, coloured by cluster; a click opens the song.
  var mapEl = document.getElementById("map");
  if (mapEl) {
    MC.loadMap()
      .then(function (sample) { return MC.drawMap(mapEl, sample, { height: 520 }); })
      .catch(function (error) { MC.mapError(mapEl, error); });
  }

  // Elbow and silhouette charts of the k scan.
  var scan = (data.k_scan || []).slice().sort(function (a, b) { return a.k - b.k; });
  var elbowEl = document.getElementById("elbow");
  var silEl = document.getElementById("silhouette");
  if (!scan.length || !elbowEl || !silEl) return;
  var ks = scan.map(function (r) { return r.k; });
  var useBic = scan.every(function (r) { return r.inertia === null || r.inertia === undefined; });
  var elbowY = scan.map(function (r) { return useBic ? r.bic : r.inertia; });
  var silY = scan.map(function (r) { return r.silhouette; });
  var chosen = data.k_chosen;
  var base = {
    height: 300, margin: { l: 64, r: 12, t: 36, b: 44 }, font: MC.fontLayout, showlegend: false,
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
    xaxis: { title: { text: "k (number of clusters)" }, dtick: 1 },
  };
  function marker(values) {
    return {
      size: ks.map(function (k) { return k === chosen ? 13 : 7; }),
      color: ks.map(function (k) { return k === chosen ? "#d9480f" : "#2f6fde"; }),
    };
  }
  Plotly.newPlot(elbowEl, [{
    type: "scatter", mode: "lines+markers", x: ks, y: elbowY, marker: marker(elbowY), line: { color: "#2f6fde" },
    hovertemplate: "k = %{x}<br>" + (useBic ? "BIC" : "inertia") + " %{y:,.0f}<extra></extra>",
  }], Object.assign({}, base, {
    title: { text: useBic ? "Elbow (BIC, lower is better)" : "Elbow (inertia, lower is tighter)", font: { size: 14 } },
    yaxis: { title: { text: useBic ? "BIC" : "inertia" } },
  }), MC.plotConfig);
  Plotly.newPlot(silEl, [{
    type: "scatter", mode: "lines+markers", x: ks, y: silY, marker: marker(silY), line: { color: "#2f6fde" },
    hovertemplate: "k = %{x}<br>silhouette %{y:.3f}<extra></extra>",
  }], Object.assign({}, base, {
    title: { text: "Silhouette (higher is better)", font: { size: 14 } },
    yaxis: { title: { text: "silhouette" } },
  }), MC.plotConfig);
})();
