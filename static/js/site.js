/* Helpers shared by the pages: page data, escaping, fetch with CSRF, the catalog map.
 *
 * Catalog text (titles, artists, cluster names) only ever reaches the DOM
 * through textContent; Plotly renders labels as a subset of HTML, so text
 * given to it goes through MC.esc first.
 */
(function () {
  "use strict";
  var MC = (window.MC = {});

  // Cluster colours: templates write data-cluster-colour rather than a
  // style="--cluster: …" attribute, which the Content-Security-Policy refuses;
  // setting the property from a script (CSSOM) is allowed.
  MC.applyClusterColours = function (root) {
    (root || document).querySelectorAll("[data-cluster-colour]").forEach(function (el) {
      el.style.setProperty("--cluster", el.dataset.clusterColour);
    });
  };
  MC.applyClusterColours();

  MC.pageData = function () {
    var el = document.getElementById("page-data");
    return el ? JSON.parse(el.textContent) : {};
  };

  // For Plotly labels and hover text: it renders <br>, <b>, <a>… itself and
  // decodes entities, so escaped text shows literally.
  MC.esc = function (value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;");
  };

  MC.csrf = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) return meta.content;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  };

  MC.debounce = function (fn, ms) {
    var timer = null;
    return function () {
      var args = arguments, self = this;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(self, args); }, ms);
    };
  };

  // fetch → {status, ok, data}; data is the parsed JSON body or null.
  MC.request = function (url, options) {
    options = options || {};
    var headers = { Accept: "application/json" };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = MC.csrf();
    }
    return fetch(url, {
      method: options.method || (options.body !== undefined ? "POST" : "GET"),
      headers: headers,
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
      credentials: "same-origin",
      signal: options.signal,
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { status: response.status, ok: response.ok, data: data };
      });
    });
  };

  // A DOM element with text content only (never HTML).
  MC.el = function (tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };

  MC.songUrl = function (id) { return "/songs/" + encodeURIComponent(id) + "/"; };
  MC.clusterUrl = function (id) { return "/clusters/" + encodeURIComponent(id) + "/"; };

  MC.plotConfig = {
    responsive: true,
    // On a phone the mode bar would cover the chart titles; pinch zoom remains.
    displayModeBar: window.matchMedia && window.matchMedia("(max-width: 640px)").matches ? false : "hover",
    displaylogo: false,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  };
  MC.staticConfig = { staticPlot: true, responsive: true };

  MC.fontLayout = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#1d1f23" };

  MC.FEATURE_SHORT = {
    danceability: "dance", energy: "energy", loudness: "loud", speechiness: "speech", acousticness: "acoustic",
    instrumentalness: "instr.", liveness: "live", valence: "valence", tempo: "tempo", duration_ms: "length",
  };

  MC.formatFeature = function (name, value) {
    if (value === null || value === undefined) return "—";
    if (name === "duration_ms") {
      var s = Math.round(value / 1000);
      return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    }
    if (name === "loudness") return value.toFixed(1) + " dB";
    if (name === "tempo") return value.toFixed(0) + " BPM";
    return Number(value).toFixed(2);
  };

  var webgl = null;
  MC.hasWebGL = function () {
    if (webgl === null) {
      try {
        var canvas = document.createElement("canvas");
        webgl = !!(window.WebGLRenderingContext && (canvas.getContext("webgl") || canvas.getContext("experimental-webgl")));
      } catch (e) {
        webgl = false;
      }
    }
    return webgl;
  };
  // Thousands of points draw fastest with WebGL; without it (some locked-down
  // or headless browsers) SVG still copes with a 5,000-point sample.
  MC.scatterType = function () { return MC.hasWebGL() ? "scattergl" : "scatter"; };

  var mapPromise = null;
  MC.loadMap = function () {
    if (!mapPromise) {
      mapPromise = MC.request("/map.json").then(function (r) {
        if (!r.ok) throw new Error((r.data && r.data.detail) || "the map could not be loaded (" + r.status + ")");
        return r.data;
      });
    }
    return mapPromise;
  };

  /* Draw the map sample into `el`: one trace per cluster (legend = clusters),
   * hover = title, artist and cluster, click = open the song.
   * opts.extra: traces drawn on top (a highlighted song, the predicted point).
   */
  MC.drawMap = function (el, data, opts) {
    opts = opts || {};
    var type = MC.scatterType();
    var byId = {};
    data.clusters.forEach(function (c, i) {
      byId[c.id] = { cluster: c, x: [], y: [], ids: [], text: [] };
    });
    for (var i = 0; i < data.x.length; i++) {
      var group = byId[data.cluster[i]];
      if (!group) continue;
      group.x.push(data.x[i]);
      group.y.push(data.y[i]);
      group.ids.push(data.id[i]);
      group.text.push(
        "<b>" + MC.esc(data.name[i]) + "</b><br>" + MC.esc(data.artist[i]) + "<br>" + MC.esc(group.cluster.name)
      );
    }
    var traces = data.clusters.map(function (c) {
      var g = byId[c.id];
      return {
        type: type, mode: "markers", name: MC.esc(c.name), x: g.x, y: g.y, customdata: g.ids, text: g.text,
        hovertemplate: "%{text}<extra></extra>",
        marker: { color: c.colour, size: opts.small ? 4 : 5, opacity: opts.dim ? 0.45 : 0.75 },
      };
    });
    (opts.extra || []).forEach(function (t) { t.type = t.type || type; traces.push(t); });
    var layout = {
      margin: { l: 10, r: 10, t: 10, b: 10 },
      height: opts.height || 480,
      hovermode: "closest",
      font: MC.fontLayout,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#fff",
      xaxis: { showticklabels: false, zeroline: false, showgrid: false, title: { text: "" } },
      yaxis: { showticklabels: false, zeroline: false, showgrid: false, scaleanchor: opts.equal ? "x" : undefined },
      showlegend: !opts.small,
      legend: { orientation: "h", y: -0.02, yanchor: "top" },
    };
    el.textContent = "";
    return Plotly.newPlot(el, traces, layout, MC.plotConfig).then(function (gd) {
      gd.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        if (point && typeof point.customdata === "string") window.location.href = MC.songUrl(point.customdata);
      });
      el.dataset.ready = "1";
      return gd;
    });
  };

  /* A search picker: a search input, a list of matches as buttons, a status line.
   * opts: id (prefix of #<id>-q, #<id>-results, #<id>-status), url(q) → address
   * answering {results: [...]}, label(item) → text, onPick(item), enabled() → true
   * or a reason why nothing can be picked now.
   * Keys: ↓ from the input to the matches, ↑/↓ between them, Enter picks, Esc returns.
   */
  MC.picker = function (opts) {
    var input = document.getElementById(opts.id + "-q");
    var list = document.getElementById(opts.id + "-results");
    var status = document.getElementById(opts.id + "-status");
    if (!input) return null;
    var seq = 0;
    function buttons() { return Array.prototype.slice.call(list.querySelectorAll("button")); }
    function clear() { list.textContent = ""; }
    function search() {
      var q = input.value.trim();
      var mine = ++seq;
      clear();
      if (q.length < 2) { status.textContent = q ? "Type at least 2 letters." : ""; return; }
      var allowed = opts.enabled ? opts.enabled() : true;
      if (allowed !== true) { status.textContent = allowed; return; }
      status.textContent = "Searching…";
      MC.request(opts.url(q)).then(function (r) {
        if (mine !== seq) return;
        if (!r.ok) { status.textContent = "The search failed (" + r.status + ")."; return; }
        var results = (r.data && r.data.results) || [];
        status.textContent = results.length
          ? results.length + (results.length === 1 ? " match" : " matches") + ": choose one below."
          : "Nothing matches “" + q + "”.";
        results.forEach(function (item) {
          var li = MC.el("li");
          var button = MC.el("button", { type: "button", class: "link" }, opts.label(item));
          button.addEventListener("click", function () {
            clear();
            input.value = "";
            status.textContent = "";
            opts.onPick(item);
            input.focus();
          });
          li.appendChild(button);
          list.appendChild(li);
        });
      }).catch(function () {
        if (mine === seq) status.textContent = "The search failed: is the site reachable?";
      });
    }
    input.addEventListener("input", MC.debounce(search, 250));
    input.addEventListener("keydown", function (e) {
      var first = buttons()[0];
      if (e.key === "Enter") {
        e.preventDefault(); // never submits the surrounding form
        if (first) first.click();
      } else if (e.key === "ArrowDown" && first) {
        e.preventDefault();
        first.focus();
      } else if (e.key === "Escape") {
        clear();
        status.textContent = "";
      }
    });
    list.addEventListener("keydown", function (e) {
      var all = buttons(), i = all.indexOf(document.activeElement);
      if (i < 0) return;
      if (e.key === "ArrowDown" && i < all.length - 1) { e.preventDefault(); all[i + 1].focus(); }
      else if (e.key === "ArrowUp") { e.preventDefault(); (i > 0 ? all[i - 1] : input).focus(); }
      else if (e.key === "Escape") { e.preventDefault(); clear(); input.focus(); }
    });
    return { input: input, clear: clear, status: status };
  };

  MC.songLabel = function (s) { return s.name + " — " + s.artist; };

  /* A query string as a generated playlist's params: the names in `strings`
   * stay text, the others become numbers (the API's query parameters). */
  MC.queryParams = function (search, strings) {
    var out = {};
    new URLSearchParams(search).forEach(function (value, key) {
      if (key === "fmt") return;
      out[key] = strings.indexOf(key) >= 0 ? value : Number(value);
    });
    return out;
  };

  /* "Save as playlist" (templates/_save_playlist.html): POST /api/playlists/
   * with the songs shown, the source, the name typed and the parameters that
   * made the songs (so the playlist can be made again later). */
  MC.savePanel = function (source) {
    var section = document.getElementById("save");
    var none = { show: function () {}, hide: function () {} };
    if (!section) return none;
    var form = document.getElementById("save-form");
    var nameEl = document.getElementById("save-name");
    var publicEl = document.getElementById("save-public");
    var button = document.getElementById("save-button");
    var status = document.getElementById("save-status");
    var signin = document.getElementById("save-signin");
    var ids = [], params = null;
    if (nameEl) nameEl.addEventListener("input", function () { nameEl.dataset.touched = "1"; });
    if (form) form.addEventListener("submit", function (e) {
      e.preventDefault();
      var name = nameEl.value.trim();
      status.className = "";
      if (!name) { status.textContent = "Give the playlist a name."; status.className = "error"; nameEl.focus(); return; }
      if (!ids.length) { status.textContent = "There are no songs to save."; status.className = "error"; return; }
      button.disabled = true;
      status.textContent = "Saving…";
      var body = { name: name, is_public: publicEl.checked, source: source, songs: ids };
      if (params) body.params = params;
      MC.request("/api/playlists/", { body: body })
        .then(function (r) {
          button.disabled = false;
          if (r.status !== 201 || !r.data) {
            status.className = "error";
            status.textContent = (r.data && r.data.detail) || "The playlist could not be saved (" + r.status + ").";
            return;
          }
          status.textContent = "Saved as ";
          status.appendChild(MC.el("a", { href: "/playlists/" + r.data.id + "/", id: "saved-link" }, r.data.name));
          status.appendChild(document.createTextNode(" (" + r.data.song_count + " songs)."));
          section.dataset.saved = String(r.data.id);
        })
        .catch(function (error) {
          button.disabled = false;
          status.className = "error";
          status.textContent = "The playlist could not be saved: " + error;
        });
    });
    return {
      show: function (songIds, defaultName, generatorParams) {
        ids = songIds.slice();
        params = generatorParams || null;
        section.hidden = false;
        if (nameEl && !nameEl.dataset.touched) nameEl.value = String(defaultName || "").slice(0, 200);
        if (status) { status.textContent = ""; status.className = ""; }
        if (signin) signin.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname + location.search);
      },
      hide: function () { section.hidden = true; },
    };
  };

  // A table cell with a link to a song, or a cluster badge: text only.
  MC.songCell = function (song) {
    var td = MC.el("td");
    td.appendChild(MC.el("a", { href: MC.songUrl(song.id) }, song.name));
    return td;
  };
  MC.clusterCell = function (cluster, colours) {
    var td = MC.el("td");
    if (cluster) {
      var a = MC.el("a", { href: MC.clusterUrl(cluster.id), class: "badge badge-small" }, cluster.name);
      if (colours && colours[cluster.id]) a.style.setProperty("--cluster", colours[cluster.id]);
      td.appendChild(a);
    } else {
      td.textContent = "—";
    }
    return td;
  };
  MC.clusterColours = function (clusters) {
    var out = {};
    (clusters || []).forEach(function (c) { out[c.id] = c.colour; });
    return out;
  };

  MC.mapError = function (el, error) {
    el.textContent = "";
    el.appendChild(MC.el("p", { class: "empty" }, "The map is not available: " + (error && error.message ? error.message : error)));
  };

  // --- colours of the light or dark scheme, for the charts -----------------------------

  MC.cssVar = function (name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  };

  var dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  MC.isDark = function () { return !!(dark && dark.matches); };

  // Colours a chart takes from the page (static/css/site.css), so it follows dark mode.
  MC.chartTheme = function () {
    return {
      fg: MC.cssVar("--fg"), muted: MC.cssVar("--muted"), card: MC.cssVar("--card"),
      grid: MC.cssVar("--grid"), zero: MC.cssVar("--zero"),
    };
  };

  // Light-scheme colours the page scripts write into their layouts, and what each becomes.
  var LIGHT = { "#fff": "card", "#ffffff": "card", "#1d1f23": "fg", "#444": "zero", "#888": "zero" };

  function themed(value, theme) {
    var key = typeof value === "string" ? value.toLowerCase() : null;
    return key && LIGHT[key] ? theme[LIGHT[key]] : value;
  }

  /* A layout in the current scheme's colours: text, backgrounds, grid and zero lines of
   * every axis, legend and hover labels. Colours a page chose on purpose stay. */
  MC.themeLayout = function (layout) {
    var theme = MC.chartTheme();
    if (!theme.fg) return layout;
    var out = Object.assign({}, layout || {});
    out.font = Object.assign({}, MC.fontLayout, out.font || {}, { color: theme.fg });
    out.paper_bgcolor = themed(out.paper_bgcolor || "rgba(0,0,0,0)", theme);
    out.plot_bgcolor = out.plot_bgcolor === undefined ? theme.card : themed(out.plot_bgcolor, theme);
    Object.keys(out).forEach(function (key) {
      if (!/^[xy]axis\d*$/.test(key) || !out[key]) return;
      var axis = Object.assign({}, out[key]);
      axis.gridcolor = axis.gridcolor ? themed(axis.gridcolor, theme) : theme.grid;
      axis.zerolinecolor = axis.zerolinecolor ? themed(axis.zerolinecolor, theme) : theme.zero;
      axis.linecolor = axis.linecolor ? themed(axis.linecolor, theme) : theme.grid;
      axis.color = axis.color ? themed(axis.color, theme) : theme.fg;
      out[key] = axis;
    });
    ["xaxis", "yaxis"].forEach(function (key) {
      if (!out[key]) out[key] = { gridcolor: theme.grid, zerolinecolor: theme.zero, linecolor: theme.grid, color: theme.fg };
    });
    out.legend = Object.assign({}, out.legend || {});
    out.legend.font = Object.assign({}, out.legend.font || {}, { color: theme.fg });
    return out;
  };

  // Every chart of the site is drawn through these two: wrap them once so each
  // chart follows the colour scheme, and redraw the charts when it changes.
  if (window.Plotly && !window.Plotly.mcThemed) {
    ["newPlot", "react"].forEach(function (name) {
      var draw = window.Plotly[name];
      window.Plotly[name] = function (gd, data, layout, config) {
        return draw.call(window.Plotly, gd, data, MC.themeLayout(layout), config).then(function (el) {
          el.mcLayout = layout; // the page's own layout and config, drawn again when the scheme changes
          el.mcConfig = config;
          return el;
        });
      };
    });
    window.Plotly.mcThemed = true;
    if (dark && dark.addEventListener) {
      dark.addEventListener("change", function () {
        document.querySelectorAll(".js-plotly-plot").forEach(function (gd) {
          if (gd.mcLayout) window.Plotly.react(gd, gd.data, gd.mcLayout, gd.mcConfig);
        });
      });
    }
  }

  // --- answers in view, errors beside their fields ------------------------------------

  /* Bring a result section into view when its top is not on screen, and move the
   * keyboard focus to its heading (screen readers announce the answer). */
  MC.reveal = function (section) {
    if (!section) return;
    var heading = section.querySelector("h2, h3");
    var top = section.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight * 0.6) {
      var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      section.scrollIntoView({ behavior: still ? "auto" : "smooth", block: "start" });
    }
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  };

  /* Errors shown beside fields: `errors` maps the id of an error element (a
   * .field-error) to its text; `invalid` lists the inputs to mark. Any other
   * error element of `form` is cleared. The first marked input gets the focus. */
  MC.showFieldErrors = function (form, errors, invalid) {
    form.querySelectorAll(".field-error").forEach(function (el) {
      el.textContent = errors[el.id] || "";
      el.hidden = !errors[el.id];
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    (invalid || []).forEach(function (el) { el.setAttribute("aria-invalid", "true"); });
    var first = (invalid || [])[0] || null;
    if (first) {
      var closed = first.closest("details:not([open])");
      if (closed) closed.open = true;
      first.scrollIntoView({ block: "center" });
      first.focus({ preventScroll: true });
    }
    return Object.keys(errors).some(function (k) { return errors[k]; });
  };
})();
