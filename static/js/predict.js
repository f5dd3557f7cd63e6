/* Predict page: sliders and number inputs kept in sync, a debounced POST to
 * /api/predict/, the predicted point in red on the map, distances, nearest songs. */
(function () {
  "use strict";
  var data = MC.pageData();
  var form = document.getElementById("predict-form");
  if (!form) return;
  var features = (data.features || []).map(function (f) { return f.name; });
  var colours = {};
  (data.clusters || []).forEach(function (c) { colours[c.name] = c.colour; });

  var predictionEl = document.getElementById("prediction");
  var errorEl = document.getElementById("predict-error");
  var mapEl = document.getElementById("predict-map");
  var distEl = document.getElementById("distances");
  var nearestSection = document.getElementById("nearest-section");
  var nearestEl = document.getElementById("nearest");
  var pointTrace = null; // index of the red point in the map's traces
  var pending = null; // the last prediction, drawn once the map is ready
  var seq = 0;
  var controller = null;

  function range(name) { return document.getElementById("range-" + name); }
  function number(name) { return document.getElementById("num-" + name); }
  var initial = {};
  features.forEach(function (name) { initial[name] = number(name).value; });

  function values() {
    var out = {};
    features.forEach(function (name) { out[name] = parseFloat(number(name).value); });
    return out;
  }

  function invalid(v) {
    var bad = [];
    features.forEach(function (name) {
      var input = number(name);
      var x = v[name];
      var min = parseFloat(input.min), max = parseFloat(input.max);
      if (!isFinite(x) || x < min || x > max) bad.push(name + " must be between " + input.min + " and " + input.max);
    });
    return bad;
  }

  // Keep the pair in sync: the slider clamps to its range, the number keeps the exact value.
  features.forEach(function (name) {
    range(name).addEventListener("input", function () { number(name).value = range(name).value; schedule(); });
    number(name).addEventListener("input", function () {
      var x = parseFloat(number(name).value);
      if (isFinite(x)) range(name).value = String(x);
      schedule();
    });
  });
  form.addEventListener("submit", function (e) { e.preventDefault(); predict(); });
  document.getElementById("reset").addEventListener("click", function () {
    setValues(initial);
  });

  function setValues(v) {
    features.forEach(function (name) {
      if (v[name] === undefined || v[name] === null) return;
      number(name).value = String(v[name]);
      range(name).value = String(v[name]);
    });
    showDuration();
    predict();
  }

  // Milliseconds are exact but hard to read: show minutes and seconds beside them.
  var readout = document.getElementById("duration-readout");
  function showDuration() {
    if (readout) readout.textContent = "= " + MC.formatFeature("duration_ms", parseFloat(number("duration_ms").value) || 0);
  }
  showDuration();
  var predictLater = MC.debounce(predict, 200);
  function schedule() { showDuration(); predictLater(); }

  function predict() {
    var v = values();
    var bad = invalid(v);
    if (bad.length) {
      errorEl.textContent = bad.join("; ") + ".";
      errorEl.hidden = false;
      return;
    }
    if (controller) controller.abort();
    controller = window.AbortController ? new AbortController() : null;
    var mine = ++seq;
    form.setAttribute("aria-busy", "true");
    MC.request("/api/predict/?nearest=5", { body: v, signal: controller ? controller.signal : undefined })
      .then(function (r) {
        if (mine !== seq) return;
        form.removeAttribute("aria-busy");
        if (!r.ok) {
          errorEl.textContent = (r.data && r.data.detail) || "The prediction failed (" + r.status + ").";
          errorEl.hidden = false;
          return;
        }
        errorEl.hidden = true;
        show(r.data);
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") return;
        form.removeAttribute("aria-busy");
        errorEl.textContent = "The prediction failed: " + error;
        errorEl.hidden = false;
      });
  }

  function show(result) {
    predictionEl.textContent = "";
    if (result.cluster) {
      var link = MC.el("a", { href: MC.clusterUrl(result.cluster.id), class: "badge" }, result.cluster.name);
      link.style.setProperty("--cluster", colours[result.cluster.name] || "#2f6fde");
      predictionEl.appendChild(link);
    } else {
      predictionEl.appendChild(MC.el("span", {}, "Noise: outside every cluster"));
    }
    predictionEl.dataset.cluster = result.cluster ? String(result.cluster.id) : "";
    // Phones: the result sits below the sliders; a bar at the bottom keeps it in sight.
    var mini = document.getElementById("prediction-mini");
    if (mini) mini.textContent = "Predicted: " + (result.cluster ? result.cluster.name : "noise");
    pending = result;
    movePoint();
    drawDistances(result);
    drawNearest(result.nearest);
    document.body.dataset.predictions = String((parseInt(document.body.dataset.predictions || "0", 10)) + 1);
  }

  function movePoint() {
    if (!pending || pointTrace === null || !pending.map) return;
    Plotly.restyle(mapEl, { x: [[pending.map.x]], y: [[pending.map.y]] }, [pointTrace]);
    mapEl.dataset.pointX = String(pending.map.x);
    mapEl.dataset.pointY = String(pending.map.y);
  }

  function drawDistances(result) {
    var probs = result.probabilities;
    var values = probs || result.distances || {};
    var names = Object.keys(values).sort(function (a, b) { return probs ? values[b] - values[a] : values[a] - values[b]; });
    var chosen = result.cluster ? result.cluster.name : null;
    Plotly.react(distEl, [{
      type: "bar", orientation: "h",
      y: names.map(MC.esc), x: names.map(function (n) { return values[n]; }),
      marker: {
        color: names.map(function (n) { return colours[n] || "#9aa1ad"; }),
        line: { color: names.map(function (n) { return n === chosen ? "#d9480f" : "rgba(0,0,0,0)"; }), width: 3 },
      },
      hovertemplate: "%{y}: %{x:.2f}<extra></extra>",
    }], {
      height: Math.max(160, 36 * names.length + 60), margin: { l: 150, r: 16, t: 8, b: 44 }, font: MC.fontLayout,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", showlegend: false,
      yaxis: { autorange: "reversed" },
      xaxis: { title: { text: probs ? "probability" : "distance to the centre (scaled units)" }, rangemode: "tozero" },
    }, MC.plotConfig);
  }

  function drawNearest(nearest) {
    if (!Array.isArray(nearest)) { nearestSection.hidden = true; return; }
    nearestEl.textContent = "";
    nearest.forEach(function (s) {
      var li = MC.el("li");
      li.appendChild(MC.el("a", { href: MC.songUrl(s.id) }, s.name));
      li.appendChild(document.createTextNode(" — " + (s.artist || "")));
      if (typeof s.distance === "number") li.appendChild(MC.el("span", { class: "score" }, "distance " + s.distance.toFixed(2)));
      nearestEl.appendChild(li);
    });
    nearestSection.hidden = nearest.length === 0;
  }

  MC.loadMap().then(function (sample) {
    return MC.drawMap(mapEl, sample, {
      dim: true,
      extra: [{
        mode: "markers", name: "Your sound", x: [], y: [], hoverinfo: "skip",
        marker: { color: "#e00000", size: 18, symbol: "circle", line: { color: "#1d1f23", width: 2 } },
      }],
    });
  }).then(function (gd) {
    pointTrace = gd.data.length - 1;
    movePoint();
  }).catch(function (error) { MC.mapError(mapEl, error); });

  // Presets: find a song, fill the sliders with its features.
  var presetQ = document.getElementById("preset-q");
  var presetResults = document.getElementById("preset-results");
  var presetStatus = document.getElementById("preset-status");
  presetQ.addEventListener("input", MC.debounce(function () {
    var q = presetQ.value.trim();
    presetResults.textContent = "";
    if (q.length < 2) { presetStatus.textContent = ""; return; }
    MC.request("/search.json?q=" + encodeURIComponent(q)).then(function (r) {
      if (q !== presetQ.value.trim()) return;
      var results = (r.data && r.data.results) || [];
      presetStatus.textContent = results.length ? "" : "No song matches.";
      results.forEach(function (s) {
        var li = MC.el("li");
        var button = MC.el("button", { type: "button", class: "link" }, s.name + " — " + s.artist);
        button.addEventListener("click", function () { usePreset(s.id); });
        li.appendChild(button);
        presetResults.appendChild(li);
      });
    });
  }, 250));
  presetQ.addEventListener("keydown", function (e) { if (e.key === "Enter") e.preventDefault(); });

  function usePreset(id) {
    MC.request("/api/songs/" + encodeURIComponent(id) + "/").then(function (r) {
      if (!r.ok || !r.data) { presetStatus.textContent = "That song could not be loaded."; return; }
      var v = {};
      features.forEach(function (name) { v[name] = r.data[name]; });
      setValues(v);
      presetResults.textContent = "";
      presetStatus.textContent = "Sliders set from “" + r.data.name + "” by " + r.data.artist + ".";
    });
  }

  predict();
})();
