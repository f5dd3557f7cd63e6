/* Runs page: staff queue a retrain (POST /api/runs/) and watch its progress;
 * runs that are queued or running are polled until they finish. */
(function () {
  "use strict";
  var POLL_MS = 1000;
  var DONE = { succeeded: true, failed: true };

  function describe(run) {
    if (run.status === "succeeded") {
      var sil = run.metrics && typeof run.metrics.silhouette === "number" ? ", silhouette " + run.metrics.silhouette.toFixed(3) : "";
      return "Run #" + run.id + " succeeded: k = " + run.n_clusters + sil + (run.is_active ? ", now active." : ".");
    }
    if (run.status === "failed") return "Run #" + run.id + " failed: " + (run.error || "no reason given") + ".";
    return "Run #" + run.id + " " + run.status + (run.stage ? " · " + run.stage : "") + " · " + run.progress + " %";
  }

  // Poll one run; onUpdate gets every answer, the promise resolves with the finished run.
  function follow(id, onUpdate) {
    return new Promise(function (resolve, reject) {
      function tick() {
        MC.request("/api/runs/" + encodeURIComponent(id) + "/").then(function (r) {
          if (!r.ok) { reject(new Error("run #" + id + " could not be read (" + r.status + ")")); return; }
          onUpdate(r.data);
          if (DONE[r.data.status]) resolve(r.data); else setTimeout(tick, POLL_MS);
        }).catch(reject);
      }
      tick();
    });
  }

  // Rows of runs still queued or running.
  document.querySelectorAll("progress[data-poll]").forEach(function (bar) {
    var row = bar.closest("tr");
    var text = row.querySelector(".status-text");
    follow(bar.dataset.poll, function (run) {
      bar.value = run.progress;
      bar.textContent = run.progress + " %";
      text.textContent = run.status + (DONE[run.status] ? "" : run.stage ? " · " + run.stage : "");
    }).then(function () { bar.remove(); }).catch(function () {});
  });

  // The list as the server renders it now (our own escaped template, same origin).
  function refreshList() {
    return fetch("/runs/", { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("runs-list");
      var current = document.getElementById("runs-list");
      if (fresh && current) current.replaceWith(document.importNode(fresh, true));
    }).catch(function () {});
  }

  var form = document.getElementById("retrain-form");
  if (!form) return;
  var status = document.getElementById("retrain-status");
  var progress = document.getElementById("retrain-progress");
  var text = document.getElementById("retrain-text");
  var button = document.getElementById("retrain");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    status.hidden = false;
    status.dataset.state = "queued";
    progress.value = 0;
    text.textContent = "Queuing a training run…";
    MC.request("/api/runs/", { body: { k: document.getElementById("retrain-k").value } }).then(function (r) {
      if (r.status !== 202 || !r.data) {
        throw new Error((r.data && (r.data.detail || JSON.stringify(r.data))) || "HTTP " + r.status);
      }
      return follow(r.data.id, function (run) {
        progress.value = run.progress;
        progress.textContent = run.progress + " %";
        text.textContent = describe(run);
      });
    }).then(function (run) {
      button.disabled = false;
      return refreshList().then(function () { status.dataset.state = run.status; });
    }).catch(function (error) {
      status.dataset.state = "error";
      text.textContent = "The run could not be queued: " + error.message;
      button.disabled = false;
    });
  });
})();
