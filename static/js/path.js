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
  // Series colours come from the stylesheet (--series-*), so they suit light and dark mode.
  var CHART = [
    { name: "energy", colour: "--series-1" }, { name: "valence", colour: "--series-2" },
    { name: "danceability", colour: "--series-3" }, { name: "acousticness", colour: "--series-4" },
  ];
  var LENGTH = { low: 3, high: 50 };
  var lengthEl = document.getElementById("length");
  LENGTH.low = parseInt(lengthEl.min, 10) || LENGTH.low;
  LENGTH.high = parseInt(lengthEl.max, 10) || LENGTH.high;
  var MESSAGES = {
    from: "Choose a start song: type its title or artist, then pick it from the matches.",
    to: "Choose an end song: type its title or artist, then pick it from the matches.",
    same: "The end song is the start song: choose another end song.",
    length: "Enter a whole number of songs from " + LENGTH.low + " to " + LENGTH.high + ".",
  };

  function drawEnd(which) {
    var el = document.querySelector("#" + which + "-chosen .chosen-song");
    el.textContent = ends[which] ? MC.songLabel(ends[which]) : "none chosen yet";
    document.getElementById(which + "-chosen").dataset.id = ends[which] ? ends[which].id : "";
  }
  ["from", "to"].forEach(function (which) {
    MC.picker({
      id: which, url: function (q) { return "/search.json?q=" + encodeURIComponent(q); }, label: MC.songLabel,
      onPick: function (song) {
        ends[which] = song;
        drawEnd(which);
        var error = document.getElementById(which + "-error");
        error.hidden = true;
        error.textContent = "";
        document.getElementById(which + "-q").removeAttribute("aria-invalid");
      },
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
    errorEl.hidden = !text;
    statusEl.textContent = text ? "" : "Fix the marked fields above, then ask again.";
    layout.hidden = true;
    save.hide();
    document.getElementById("results").dataset.state = "error";
  }

  // Problems beside their field: {error element id: text} and the inputs to mark.
  function check() {
    var errors = {}, invalid = [];
    if (!ends.from) { errors["from-error"] = MESSAGES.from; invalid.push(document.getElementById("from-q")); }
    if (!ends.to) { errors["to-error"] = MESSAGES.to; invalid.push(document.getElementById("to-q")); }
    if (ends.from && ends.to && ends.from.id === ends.to.id) {
      errors["to-error"] = MESSAGES.same;
      invalid.push(document.getElementById("to-q"));
    }
    var v = lengthEl.validity;
    if (v.badInput || v.rangeUnderflow || v.rangeOverflow || v.stepMismatch || !lengthEl.value.trim()) {
      errors["length-error"] = MESSAGES.length;
      invalid.push(lengthEl);
    }
    return { errors: errors, invalid: invalid };
  }

  // The API's refusal beside the field it is about, in the page's words.
  function apiErrors(data) {
    var errors = {}, invalid = [], fields = (data && data.errors) || {};
    if (fields.length) { errors["length-error"] = MESSAGES.length; invalid.push(lengthEl); }
    if (fields.from) { errors["from-error"] = MESSAGES.from; invalid.push(document.getElementById("from-q")); }
    if (fields.to) { errors["to-error"] = MESSAGES.to; invalid.push(document.getElementById("to-q")); }
    if (/same song/.test((data && data.detail) || "")) {
      errors["to-error"] = MESSAGES.same;
      invalid.push(document.getElementById("to-q"));
    }
    return { errors: errors, invalid: invalid };
  }

  function run() {
    var problems = check();
    if (MC.showFieldErrors(form, problems.errors, problems.invalid)) { fail(""); return; }
    var params = new URLSearchParams({ from: ends.from.id, to: ends.to.id, length: lengthEl.value.trim() });
    history.replaceState(null, "", location.pathname + "?" + params.toString());
    errorEl.hidden = true;
    statusEl.textContent = "Finding the path…";
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    var sent = { from: ends.from, to: ends.to, params: MC.queryParams(params.toString(), ["from", "to"]) };
    MC.request("/api/path/?" + params.toString()).then(function (r) {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
      if (!r.ok) {
        var found = r.status === 400 ? apiErrors(r.data) : { errors: {}, invalid: [] };
        if (MC.showFieldErrors(form, found.errors, found.invalid)) { fail(""); return; }
        fail(r.status === 404 ? "One of the two songs is no longer in the catalog: choose it again."
          : "The path failed (" + r.status + ")" + (r.data && r.data.detail ? ": " + r.data.detail : "."));
        MC.reveal(document.getElementById("results"));
        return;
      }
      show(r.data, sent);
      MC.reveal(document.getElementById("results"));
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
        line: { color: MC.cssVar(f.colour), width: 2 }, marker: { size: 6 },
        hovertemplate: "%{text}<br>" + f.name + " %{y:.2f}<extra>song %{x}</extra>",
      };
    });
    Plotly.react(chartEl, traces, {
      height: 320, margin: { l: 44, r: 10, t: 10, b: 44 }, font: MC.fontLayout, hovermode: "closest",
      paper_bgcolor: "rgba(0,0,0,0)",
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
  // Problems with the address's song ids or length are already written beside their fields.
  if (data.run_now) run();
})();
