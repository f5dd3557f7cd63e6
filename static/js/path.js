/* Path page: a start and an end song picked by search, GET /api/path/, the
 * path as an ordered list with each step's size and a chart of the sound
 * along it. The address keeps ?from=&to=&length= (a path is a link). */
(function () {
  "use strict";
  var data = MC.pageData();
  var form = document.getElementById("path-form");
  if (!form) return;
  var ends = { from: data.from || null, to: data.to || null };
  var colours = MC.clusterColours(data.clusters);
  var statusEl = document.getElementById("path-status");
  var errorEl = document.getElementById("path-error");
  var layout = document.getElementById("path-layout");
  var list = document.getElementById("path-list");
  var chartEl = document.getElementById("path-chart");
  var submit = document.getElementById("path-submit");
  var save = MC.savePanel("path");
  var CHART = [
    { name: "energy", colour: "#d9480f" }, { name: "valence", colour: "#2f9e44" },
    { name: "danceability", colour: "#1f77b4" }, { name: "acousticness", colour: "#9467bd" },
  ];

  function drawEnd(which) {
    var el = document.querySelector("#" + which + "-chosen .chosen-song");
    el.textContent = ends[which] ? MC.songLabel(ends[which]) : "none chosen yet";
    document.getElementById(which + "-chosen").dataset.id = ends[which] ? ends[which].id : "";
  }
  ["from", "to"].forEach(function (which) {
    MC.picker({
      id: which, url: function (q) { return "/search.json?q=" + encodeURIComponent(q); }, label: MC.songLabel,
      onPick: function (song) { ends[which] = song; drawEnd(which); },
    });
    drawEnd(which);
  });
  document.getElementById("path-swap").addEventListener("click", function () {
    var a = ends.from;
    ends.from = ends.to;
    ends.to = a;
    drawEnd("from");
    drawEnd("to");
  });

  function fail(text) {
    errorEl.textContent = text;
    errorEl.hidden = false;
    statusEl.textContent = "";
    layout.hidden = true;
    save.hide();
    document.getElementById("results").dataset.state = "error";
  }

  function run() {
    var length = document.getElementById("length");
    if (!ends.from || !ends.to) { fail("Choose " + (!ends.from ? "a start song" : "an end song") + " first."); return; }
    if (length.validity.badInput || !length.value.trim()) { fail("Songs in the path: enter a number from 3 to 50."); return; }
    var params = new URLSearchParams({ from: ends.from.id, to: ends.to.id, length: length.value.trim() });
    history.replaceState(null, "", location.pathname + "?" + params.toString());
    errorEl.hidden = true;
    statusEl.textContent = "Finding the path…";
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    var sent = { from: ends.from, to: ends.to, params: MC.queryParams(params.toString(), ["from", "to"]) };
    MC.request("/api/path/?" + params.toString()).then(function (r) {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
      if (!r.ok) { fail((r.data && r.data.detail) || "The path failed (" + r.status + ")."); return; }
      show(r.data, sent);
    }).catch(function (error) {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
      fail("The path failed: " + error);
    });
  }

  function show(result, sent) {
    var songs = result.songs || [];
    var steps = result.steps || [];
    list.textContent = "";
    songs.forEach(function (s, i) {
      var li = MC.el("li", { "data-id": s.id });
      li.appendChild(MC.el("a", { href: MC.songUrl(s.id) }, s.name));
      li.appendChild(document.createTextNode(" — " + (s.artist || "")));
      if (s.cluster) {
        var badge = MC.el("a", { href: MC.clusterUrl(s.cluster.id), class: "badge badge-small" }, s.cluster.name);
        if (colours[s.cluster.id]) badge.style.setProperty("--cluster", colours[s.cluster.id]);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(badge);
      }
      if (i > 0 && typeof steps[i - 1] === "number") {
        li.appendChild(MC.el("span", { class: "step" }, "step " + steps[i - 1].toFixed(2)));
      } else if (i === 0) {
        li.appendChild(MC.el("span", { class: "step" }, "start"));
      }
      list.appendChild(li);
    });
    layout.hidden = false;
    var total = steps.reduce(function (a, b) { return a + b; }, 0);
    var longest = steps.length ? Math.max.apply(null, steps) : 0;
    statusEl.textContent = songs.length + " songs from “" + sent.from.name + "” to “" + sent.to.name + "”: "
      + "total distance " + total.toFixed(2) + ", longest step " + longest.toFixed(2) + ".";
    document.getElementById("results").dataset.state = "loaded";
    drawChart(songs);
    save.show(songs.map(function (s) { return s.id; }), "Path: " + sent.from.name + " → " + sent.to.name, sent.params);
  }

  function drawChart(songs) {
    if (!window.Plotly) return;
    var x = songs.map(function (s, i) { return i + 1; });
    var text = songs.map(function (s) { return "<b>" + MC.esc(s.name) + "</b><br>" + MC.esc(s.artist); });
    var traces = CHART.map(function (f) {
      return {
        type: "scatter", mode: "lines+markers", name: f.name, x: x,
        y: songs.map(function (s) { return s[f.name]; }), text: text,
        customdata: songs.map(function (s) { return s.id; }),
        line: { color: f.colour, width: 2 }, marker: { size: 6 },
        hovertemplate: "%{text}<br>" + f.name + " %{y:.2f}<extra>song %{x}</extra>",
      };
    });
    Plotly.react(chartEl, traces, {
      height: 320, margin: { l: 44, r: 10, t: 10, b: 44 }, font: MC.fontLayout, hovermode: "closest",
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
      xaxis: { title: { text: "song in the path" }, dtick: songs.length > 20 ? 5 : 1, range: [0.5, songs.length + 0.5] },
      yaxis: { range: [0, 1.02], title: { text: "value (0-1)" } },
      legend: { orientation: "h", y: 1.14 },
    }, MC.plotConfig).then(function (gd) {
      if (!gd.dataset.clickBound) {
        gd.on("plotly_click", function (event) {
          var p = event && event.points && event.points[0];
          if (p && typeof p.customdata === "string") window.location.href = MC.songUrl(p.customdata);
        });
        gd.dataset.clickBound = "1";
      }
      chartEl.dataset.ready = "1";
    });
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); run(); });
  if ((data.unknown || []).length) {
    fail("No song with the " + data.unknown.map(function (n) { return n === "from" ? "start" : "end"; }).join(" or ")
      + " id in the address: choose the song again.");
  } else if (data.run_now) {
    run();
  }
})();
