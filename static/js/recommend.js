/* Recommendations page: seeds (songs, artists, genres) picked by search, bounds
 * and targets, then GET /api/recommendations/ with the same query string the
 * address bar keeps (a result is a link). */
(function () {
  "use strict";
  var data = MC.pageData();
  var form = document.getElementById("recommend-form");
  if (!form) return;
  var MAX = data.max_seeds || 5;
  var TYPES = { song: "song", artist: "artist", genre: "genre" };
  var PARAM = { song: "seed_songs", artist: "seed_artists", genre: "seed_genres" };
  var seeds = (data.seeds || []).slice(0, MAX);
  var colours = MC.clusterColours(data.clusters);

  var seedList = document.getElementById("seed-list");
  var seedCount = document.getElementById("seed-count");
  var statusEl = document.getElementById("recommend-status");
  var errorEl = document.getElementById("recommend-error");
  var seedWrap = document.getElementById("seed-table-wrap");
  var trackWrap = document.getElementById("track-table-wrap");
  var submit = document.getElementById("recommend-submit");
  var save = MC.savePanel("recommendations");
  var controller = null;

  function full() { return seeds.length >= MAX ? MAX + " seeds chosen: remove one to add another." : true; }

  function addSeed(type, id, label) {
    if (seeds.some(function (s) { return s.type === type && s.id === id; })) {
      seedCount.textContent = "“" + label + "” is a seed already.";
      return;
    }
    if (full() !== true) { seedCount.textContent = full(); return; }
    seeds.push({ type: type, id: id, label: label });
    var seedError = document.getElementById("seeds-error");
    if (seedError) { seedError.hidden = true; seedError.textContent = ""; }
    drawSeeds();
  }

  function drawSeeds() {
    seedList.textContent = "";
    seeds.forEach(function (seed, i) {
      var li = MC.el("li", { class: "chip", "data-type": seed.type, "data-id": seed.id });
      li.appendChild(MC.el("span", { class: "chip-type" }, TYPES[seed.type]));
      li.appendChild(MC.el("span", { class: "chip-label" }, seed.label));
      var remove = MC.el("button", { type: "button", class: "chip-remove", "aria-label": "Remove seed " + seed.label }, "×");
      remove.addEventListener("click", function () {
        seeds.splice(i, 1);
        drawSeeds();
        (seedList.querySelector(".chip-remove") || document.getElementById("song-q")).focus();
      });
      li.appendChild(remove);
      seedList.appendChild(li);
    });
    var left = MAX - seeds.length;
    seedCount.textContent = seeds.length
      ? seeds.length + " of " + MAX + " seeds" + (left ? " (" + left + " more possible)." : ": the most there can be.")
      : "No seed yet: add a song, an artist or a genre.";
    form.dataset.seeds = String(seeds.length);
  }

  MC.picker({
    id: "song", url: function (q) { return "/search.json?q=" + encodeURIComponent(q); }, label: MC.songLabel,
    enabled: full, onPick: function (s) { addSeed("song", s.id, MC.songLabel(s)); },
  });
  MC.picker({
    id: "artist", url: function (q) { return "/artists.json?q=" + encodeURIComponent(q); },
    label: function (a) { return a.name + " (" + a.songs + (a.songs === 1 ? " song)" : " songs)"); },
    enabled: full, onPick: function (a) { addSeed("artist", a.id, a.name); },
  });

  // Genres: a filter box over a list box (all genres of the index, with song counts).
  var genreQ = document.getElementById("genre-q");
  var genreSelect = document.getElementById("genre-select");
  var genreStatus = document.getElementById("genre-status");
  var genres = [];
  var SHOWN = 300;
  function drawGenres() {
    var q = genreQ.value.trim().toLowerCase();
    var matches = genres.filter(function (g) { return !q || g.name.toLowerCase().indexOf(q) >= 0; });
    genreSelect.textContent = "";
    matches.slice(0, SHOWN).forEach(function (g) {
      genreSelect.appendChild(MC.el("option", { value: g.name }, g.name + " (" + g.count.toLocaleString("en") + ")"));
    });
    if (genreSelect.options.length) genreSelect.selectedIndex = 0;
    genreStatus.textContent = !genres.length ? "No genres in this catalog."
      : matches.length > SHOWN ? "Showing " + SHOWN + " of " + matches.length.toLocaleString("en") + " genres: type to narrow."
      : matches.length ? matches.length + (matches.length === 1 ? " genre." : " genres.") : "No genre matches.";
  }
  function addGenre() {
    var option = genreSelect.options[genreSelect.selectedIndex];
    if (option) addSeed("genre", option.value, option.value);
  }
  MC.request("/api/recommendations/genres/").then(function (r) {
    if (!r.ok) {
      genreStatus.textContent = (r.data && r.data.detail) || "The genres could not be loaded (" + r.status + ").";
      return;
    }
    var counts = (r.data && r.data.genres) || {};
    genres = Object.keys(counts).sort().map(function (name) { return { name: name, count: counts[name] }; });
    drawGenres();
  }).catch(function () { genreStatus.textContent = "The genres could not be loaded."; });
  genreQ.addEventListener("input", MC.debounce(drawGenres, 120));
  genreQ.addEventListener("keydown", function (e) {
    if (e.key === "Enter") { e.preventDefault(); addGenre(); }
    else if (e.key === "ArrowDown" && genreSelect.options.length) { e.preventDefault(); genreSelect.focus(); }
  });
  genreSelect.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); addGenre(); } });
  genreSelect.addEventListener("dblclick", addGenre);
  document.getElementById("genre-add").addEventListener("click", addGenre);

  // The query: seeds, limit, then each filled min/target/max box. Problems are
  // reported beside their field ({error element id: text}), in the page's words.
  var KIND = { min: "Min", target: "Target", max: "Max" };
  var limitEl = document.getElementById("limit");
  function query() {
    var params = new URLSearchParams();
    var errors = {}, invalid = [];
    if (!seeds.length) {
      errors["seeds-error"] = "Add at least one seed: a song, an artist or a genre.";
      invalid.push(document.getElementById("song-q"));
    }
    Object.keys(PARAM).forEach(function (type) {
      var ids = seeds.filter(function (s) { return s.type === type; }).map(function (s) { return s.id; });
      if (ids.length) params.set(PARAM[type], ids.join(","));
    });
    var limit = limitEl.value.trim();
    if (limitEl.validity.badInput || limitEl.validity.rangeUnderflow || limitEl.validity.rangeOverflow
        || limitEl.validity.stepMismatch) {
      errors["limit-error"] = "Enter a whole number of songs from 1 to 100.";
      invalid.push(limitEl);
    } else if (limit) params.set("limit", limit);
    form.querySelectorAll(".attributes-table tr[data-attribute]").forEach(function (row) {
      var name = row.getAttribute("data-attribute");
      var problems = [];
      ["min", "target", "max"].forEach(function (kind) {
        var input = document.getElementById(kind + "_" + name);
        if (input.validity.badInput) problems.push([input, KIND[kind] + ": enter a number."]);
        else if (input.validity.rangeUnderflow || input.validity.rangeOverflow) {
          problems.push([input, KIND[kind] + " must be from " + input.min + " to " + input.max + "."]);
        } else if (input.value.trim() !== "") params.set(input.name, input.value.trim());
      });
      // The API refuses a floor above its ceiling; say so at the field before asking.
      var low = params.get("min_" + name), high = params.get("max_" + name);
      if (low !== null && high !== null && parseFloat(low) > parseFloat(high)) {
        problems.push([document.getElementById("min_" + name), "The min (" + low + ") is above the max (" + high + ")."]);
        problems.push([document.getElementById("max_" + name), null]);
      }
      if (problems.length) {
        errors["error-" + name] = problems.map(function (p) { return p[1]; }).filter(Boolean).join(" ");
        problems.forEach(function (p) { invalid.push(p[0]); });
      }
    });
    return { params: params, errors: errors, invalid: invalid };
  }

  // API parameter names as the form calls them (for messages the page did not foresee).
  function pageWords(text) {
    return String(text)
      .replace(/\b(min|max|target)_([a-z_]+)/g, function (m, kind, name) { return name + " " + KIND[kind].toLowerCase(); })
      .replace(/\bseed_songs\b|\bseed_artists\b|\bseed_genres\b/g, function (m) { return m.slice(5, -1) + " seeds"; })
      .replace(/\blimit\b/g, "songs");
  }

  /* The API's refusal beside the field it names: unknown seeds at the seeds,
   * a bound at its attribute, the number of songs at its box. */
  function apiErrors(data) {
    var errors = {}, invalid = [], general = [];
    var fields = (data && data.errors) || {};
    Object.keys(fields).forEach(function (key) {
      var messages = [].concat(fields[key]).map(String);
      var bound = /^(min|target|max)_(.+)$/.exec(key);
      if (bound && document.getElementById(key)) {
        errors["error-" + bound[2]] = messages.map(function (m) {
          return KIND[bound[1]] + ": " + pageWords(m.replace(key + " ", "").replace(/^Ensure this value is /, "must be "));
        }).join(" ");
        invalid.push(document.getElementById(key));
      } else if (/^seed_/.test(key)) {
        errors["seeds-error"] = messages.map(pageWords).join(" ");
        invalid.push(document.getElementById("song-q"));
      } else if (key === "limit") {
        errors["limit-error"] = "Enter a whole number of songs from 1 to 100.";
        invalid.push(limitEl);
      } else {
        messages.forEach(function (m) {
          var unknown = /^unknown seed\(s\): (.+)$/.exec(m);
          if (unknown) {
            errors["seeds-error"] = "Not in this catalog: " + unknown[1].replace(/'([^']*)'/g, "“$1”")
              + ". Remove it and choose another.";
            invalid.push(document.getElementById("song-q"));
          } else {
            general.push(pageWords(m));
          }
        });
      }
    });
    if (!Object.keys(fields).length) general.push(pageWords((data && data.detail) || ""));
    return { errors: errors, invalid: invalid, general: general.filter(Boolean).join(" ") };
  }

  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = !text;
    statusEl.textContent = text ? "" : "Fix the marked fields above, then ask again.";
    seedWrap.hidden = true;
    trackWrap.hidden = true;
    save.hide();
  }

  function run() {
    var q = query();
    if (MC.showFieldErrors(form, q.errors, q.invalid)) {
      showError("");
      document.getElementById("results").dataset.state = "invalid";
      return;
    }
    var search = q.params.toString();
    history.replaceState(null, "", location.pathname + (search ? "?" + search : ""));
    if (controller) controller.abort();
    controller = window.AbortController ? new AbortController() : null;
    errorEl.hidden = true;
    statusEl.textContent = "Finding recommendations…";
    form.setAttribute("aria-busy", "true");
    submit.disabled = true;
    var sent = seeds.slice();
    var sentParams = MC.queryParams(search, ["seed_songs", "seed_artists", "seed_genres"]);
    MC.request("/api/recommendations/?" + search, { signal: controller ? controller.signal : undefined })
      .then(function (r) {
        form.removeAttribute("aria-busy");
        submit.disabled = false;
        if (!r.ok) {
          var found = r.status === 400 ? apiErrors(r.data) : { errors: {}, invalid: [], general: "" };
          var marked = MC.showFieldErrors(form, found.errors, found.invalid);
          showError(found.general || (marked ? "" : (r.data && r.data.detail && pageWords(r.data.detail))
            || "The recommendations failed (" + r.status + ")."));
          document.getElementById("results").dataset.state = "error";
          if (!marked) MC.reveal(document.getElementById("results"));
          return;
        }
        show(r.data, sent, sentParams);
        MC.reveal(document.getElementById("results"));
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") return;
        form.removeAttribute("aria-busy");
        submit.disabled = false;
        showError("The recommendations failed: " + error);
      });
  }

  function cell(text, cls) { return MC.el("td", cls ? { class: cls } : {}, text); }

  function show(result, sent, sentParams) {
    var labels = {};
    sent.forEach(function (s) { labels[s.type.toUpperCase() + ":" + s.id] = s.label; });
    var seedBody = document.querySelector("#seed-table tbody");
    seedBody.textContent = "";
    (result.seeds || []).forEach(function (s) {
      var tr = MC.el("tr");
      tr.appendChild(MC.el("td", {}, labels[s.type + ":" + s.id] || s.id));
      tr.appendChild(cell(String(s.type).toLowerCase()));
      tr.appendChild(cell(String(s.initialPoolSize), "num"));
      tr.appendChild(cell(String(s.afterFilteringSize), "num"));
      seedBody.appendChild(tr);
    });
    seedWrap.hidden = !(result.seeds || []).length;
    var tracks = result.tracks || [];
    var body = document.querySelector("#track-table tbody");
    body.textContent = "";
    tracks.forEach(function (t, i) {
      var tr = MC.el("tr", { "data-id": t.id });
      tr.appendChild(cell(String(i + 1), "num"));
      tr.appendChild(MC.songCell(t));
      tr.appendChild(cell(t.artist));
      tr.appendChild(MC.clusterCell(t.cluster, colours));
      ["energy", "danceability", "valence", "acousticness", "tempo"].forEach(function (f) {
        tr.appendChild(cell(MC.formatFeature(f, t[f]), "num"));
      });
      tr.appendChild(cell(t.popularity === null || t.popularity === undefined ? "—" : String(t.popularity), "num"));
      body.appendChild(tr);
    });
    trackWrap.hidden = !tracks.length;
    statusEl.textContent = tracks.length
      ? tracks.length + (tracks.length === 1 ? " song" : " songs") + " for " + sent.map(function (s) { return s.label; }).join(", ") + "."
      : "No song passes these filters: widen a min/max bound (the table above shows how many songs each seed kept).";
    document.getElementById("results").dataset.state = tracks.length ? "loaded" : "empty";
    if (tracks.length) {
      save.show(tracks.map(function (t) { return t.id; }),
        "Recommendations: " + sent.map(function (s) { return s.label; }).join(", "), sentParams);
    } else {
      save.hide();
    }
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); run(); });
  document.getElementById("recommend-clear").addEventListener("click", function () {
    seeds = [];
    drawSeeds();
    form.querySelectorAll(".attributes-table input").forEach(function (input) { input.value = ""; });
    document.getElementById("limit").value = "20";
    MC.showFieldErrors(form, {}, []);
    history.replaceState(null, "", location.pathname);
  });

  drawSeeds();
  if (data.run_now) run();
})();
