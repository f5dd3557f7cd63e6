/* Song page: features against the catalog and the cluster, the song on the map, similar songs. */
(function () {
  "use strict";
  var data = MC.pageData();
  var song = data.song || {};
  var cluster = data.cluster;

  // Features in σ from the catalog average: the song and its cluster's centre.
  var chartEl = document.getElementById("features-chart");
  if (chartEl && window.Plotly) {
    var names = (data.features || []).map(function (f) { return f.name; });
    var labels = {};
    (data.features || []).forEach(function (f) { labels[f.name] = f.label || f.name; });
    var stats = data.stats || {};
    var zOf = function (name, value) {
      var s = stats[name] || {};
      if (value === null || value === undefined || s.mean === null || s.mean === undefined || !s.std) return 0;
      return (value - s.mean) / s.std;
    };
    var short = names.map(function (n) { return MC.FEATURE_SHORT[n] || n; });
    var traces = [{
      type: "bar", name: "This song", x: short,
      y: names.map(function (n) { return zOf(n, song.features[n]); }),
      text: names.map(function (n) { return MC.esc(labels[n] + ": " + MC.formatFeature(n, song.features[n])); }),
      textposition: "none", hovertemplate: "%{text}<br>%{y:+.2f} σ<extra>this song</extra>",
      marker: { color: "#d9480f" },
    }];
    if (cluster) {
      traces.push({
        type: "bar", name: "Cluster: " + MC.esc(cluster.name), x: short,
        y: names.map(function (n) { return cluster.z[n] || 0; }),
        text: names.map(function (n) { return MC.esc(labels[n] + ": " + MC.formatFeature(n, cluster.centroid[n])); }),
        textposition: "none", hovertemplate: "%{text}<br>%{y:+.2f} σ<extra>cluster average</extra>",
        marker: { color: ((data.clusters || []).filter(function (c) { return c.id === cluster.id; })[0] || {}).colour || "#2f6fde" },
      });
    }
    Plotly.newPlot(chartEl, traces, {
      barmode: "group", height: 320, margin: { l: 50, r: 10, t: 10, b: 60 }, font: MC.fontLayout,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
      yaxis: { title: { text: "σ from the catalog average" }, zeroline: true, zerolinecolor: "#444" },
      legend: { orientation: "h", y: 1.12 },
    }, MC.plotConfig);
  }

  // The song on the map: the sample dimmed, this song large and ringed.
  var mapEl = document.getElementById("song-map");
  if (mapEl && song.map) {
    MC.loadMap().then(function (sample) {
      return MC.drawMap(mapEl, sample, {
        height: 360, dim: true,
        extra: [{
          mode: "markers", name: MC.esc(song.name), x: [song.map.x], y: [song.map.y],
          hovertemplate: "<b>" + MC.esc(song.name) + "</b><br>" + MC.esc(song.artist) + "<extra>this song</extra>",
          marker: { color: "#d9480f", size: 16, line: { color: "#1d1f23", width: 2 } },
        }],
      });
    }).catch(function (error) { MC.mapError(mapEl, error); });
  }

  // Artists that sound like this song's artist (GET /api/artists/<id>/similar/).
  var artistsSection = document.getElementById("similar-artists");
  if (artistsSection && artistsSection.dataset.url) {
    var artistsStatus = artistsSection.querySelector(".status");
    var artistsList = artistsSection.querySelector(".similar-artists-list");
    var unavailable = function () {
      artistsStatus.textContent = "Similar artists could not be loaded right now.";
      artistsSection.dataset.state = "unavailable";
    };
    MC.request(artistsSection.dataset.url).then(function (r) {
      if (!r.ok) {
        if (r.status === 404 || r.status === 503) {
          artistsStatus.textContent = "Similar artists are not available yet.";
          artistsSection.dataset.state = "unavailable";
        } else {
          unavailable();
        }
        return;
      }
      var related = (r.data && r.data.related) || [];
      if (!related.length) {
        artistsStatus.textContent = "No similar artists found.";
        artistsSection.dataset.state = "empty";
        return;
      }
      artistsStatus.textContent = "";
      related.forEach(function (artist) {
        var li = MC.el("li");
        li.appendChild(MC.el("a", { href: "/search/?q=" + encodeURIComponent(artist.name) }, artist.name));
        if (artist.genres && artist.genres.length) {
          li.appendChild(MC.el("small", { class: "why" }, artist.genres.slice(0, 3).join(", ")));
        }
        li.appendChild(document.createTextNode(" "));
        li.appendChild(MC.el("a", { class: "more", href: "/recommend/?seed_artists=" + encodeURIComponent(artist.id) },
          "recommendations"));
        artistsList.appendChild(li);
      });
      artistsSection.dataset.state = "loaded";
    }).catch(unavailable);
  }

  // Similar songs, when the similarity endpoint answers.
  var section = document.getElementById("similar");
  if (!section || !section.dataset.url) return;
  var status = section.querySelector(".status");
  var list = section.querySelector(".similar-list");
  function explain(value) {
    if (!value) return "";
    if (typeof value === "string") return value;
    if (Array.isArray(value)) return value.map(explain).filter(Boolean).join("; ");
    if (typeof value === "object") return explain(value.text || value.summary || value.reason || "");
    return String(value);
  }
  MC.request(section.dataset.url).then(function (r) {
    if (!r.ok) {
      status.textContent = r.status === 404 || r.status === 503
        ? "Similar songs are not available yet."
        : "Similar songs could not be loaded right now.";
      section.dataset.state = "unavailable";
      return;
    }
    var results = Array.isArray(r.data) ? r.data : (r.data && r.data.results) || [];
    if (!results.length) {
      status.textContent = "No similar songs found.";
      section.dataset.state = "empty";
      return;
    }
    status.textContent = "";
    results.forEach(function (item) {
      var s = item.song || {};
      var li = MC.el("li");
      li.appendChild(MC.el("a", { href: MC.songUrl(s.id) }, s.name));
      li.appendChild(document.createTextNode(" — " + (s.artist || "")));
      if (typeof item.similarity === "number") {
        var pct = Math.round(item.similarity * 100);
        li.appendChild(MC.el("span", {
          class: "score",
          title: "Closer than the 10th-nearest neighbour of " + pct + " % of the catalog's songs",
        }, pct + " % similar"));
      }
      var why = explain(item.explanation);
      if (why) li.appendChild(MC.el("small", { class: "why" }, why));
      list.appendChild(li);
    });
    section.dataset.state = "loaded";
  }).catch(function () {
    status.textContent = "Similar songs could not be loaded right now.";
    section.dataset.state = "unavailable";
  });
})();
