/* Radio page: GET /api/songs/<id>/radio/?limit=25 as a table, and "Save as playlist". */
(function () {
  "use strict";
  var data = MC.pageData();
  var section = document.getElementById("radio");
  if (!section || !data.url) return;
  var statusEl = document.getElementById("radio-status");
  var wrap = document.getElementById("radio-wrap");
  var body = document.querySelector("#radio-table tbody");
  var colours = MC.clusterColours(data.clusters);
  var save = MC.savePanel("radio");

  function cell(text, cls) { return MC.el("td", cls ? { class: cls } : {}, text); }

  MC.request(data.url).then(function (r) {
    if (!r.ok) {
      statusEl.textContent = (r.data && r.data.detail) || "The radio could not be loaded (" + r.status + ").";
      statusEl.className = "error";
      section.dataset.state = "error";
      return;
    }
    var songs = (r.data && r.data.songs) || [];
    body.textContent = "";
    songs.forEach(function (s, i) {
      var tr = MC.el("tr", { "data-id": s.id });
      tr.appendChild(cell(String(i + 1), "num"));
      tr.appendChild(MC.songCell(s));
      tr.appendChild(cell(s.artist));
      tr.appendChild(MC.clusterCell(s.cluster, colours));
      tr.appendChild(cell(MC.formatFeature("energy", s.energy), "num"));
      tr.appendChild(cell(MC.formatFeature("valence", s.valence), "num"));
      tr.appendChild(cell(MC.formatFeature("tempo", s.tempo), "num"));
      tr.appendChild(cell(MC.formatFeature("duration_ms", s.duration_ms), "num"));
      body.appendChild(tr);
    });
    wrap.hidden = !songs.length;
    statusEl.textContent = songs.length > 1
      ? songs.length + (r.data.variety
        ? " songs: the seed, then songs drawn from those near it, one per artist (variety " + r.data.variety + ", seed " + r.data.seed + ")."
        : " songs: the seed, then the songs nearest to it, one per artist.")
      : "No other song is close enough to make a radio.";
    section.dataset.state = songs.length ? "loaded" : "empty";
    var params = MC.queryParams(data.url.split("?")[1] || "", []);
    params.song = data.song.id;
    params.variety = r.data.variety || 0;
    if (r.data.seed !== null && r.data.seed !== undefined) params.seed = r.data.seed;
    if (songs.length) save.show(songs.map(function (s) { return s.id; }), (r.data && r.data.title) || "Radio: " + data.song.name, params);
  }).catch(function (error) {
    statusEl.textContent = "The radio could not be loaded: " + error;
    statusEl.className = "error";
    section.dataset.state = "error";
  });
})();
