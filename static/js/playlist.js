/* Playlist page (owner): reorder, remove and add songs in the edit form, which
 * posts them as one JSON list with the name, description and public flag;
 * copy the share link. */
(function () {
  "use strict";
  var form = document.getElementById("edit-form");
  var list = document.getElementById("edit-songs");
  var hidden = document.getElementById("edit-songs-json");
  var count = document.getElementById("edit-count");
  if (!form || !list) return;
  var live = MC.el("p", { class: "visually-hidden", role: "status", "aria-live": "polite", id: "edit-live" });
  list.parentNode.insertBefore(live, list.nextSibling);

  function ids() {
    return Array.prototype.map.call(list.children, function (li) { return li.getAttribute("data-id"); });
  }
  function sync() {
    hidden.value = JSON.stringify(ids());
    count.textContent = "(" + list.children.length + ")";
    form.dataset.changed = "1";
  }
  function labelOf(li) { return li.querySelector(".edit-label").textContent; }

  function row(song) {
    var li = MC.el("li", { "data-id": song.id });
    li.appendChild(MC.el("span", { class: "edit-label" }, MC.songLabel(song)));
    var buttons = MC.el("span", { class: "edit-buttons" });
    buttons.appendChild(MC.el("button", { type: "button", class: "secondary small", "data-move": "-1", "aria-label": "Move up: " + song.name }, "↑"));
    buttons.appendChild(MC.el("button", { type: "button", class: "secondary small", "data-move": "1", "aria-label": "Move down: " + song.name }, "↓"));
    buttons.appendChild(MC.el("button", { type: "button", class: "secondary small", "data-remove": "", "aria-label": "Remove: " + song.name }, "×"));
    li.appendChild(buttons);
    return li;
  }

  list.addEventListener("click", function (e) {
    var button = e.target.closest("button");
    if (!button) return;
    var li = button.closest("li");
    if (button.hasAttribute("data-remove")) {
      var next = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      live.textContent = "Removed " + labelOf(li) + ".";
      sync();
      (next ? next.querySelector("[data-remove]") : document.getElementById("add-q")).focus();
      return;
    }
    var move = parseInt(button.getAttribute("data-move"), 10);
    if (move < 0 && li.previousElementSibling) list.insertBefore(li, li.previousElementSibling);
    else if (move > 0 && li.nextElementSibling) list.insertBefore(li.nextElementSibling, li);
    else return;
    button.focus();
    live.textContent = labelOf(li) + ": now number " + (ids().indexOf(li.getAttribute("data-id")) + 1) + ".";
    sync();
  });

  MC.picker({
    id: "add", url: function (q) { return "/search.json?q=" + encodeURIComponent(q); }, label: MC.songLabel,
    enabled: function () { return list.children.length >= 1000 ? "A playlist holds at most 1,000 songs." : true; },
    onPick: function (song) {
      list.appendChild(row(song));
      live.textContent = "Added " + MC.songLabel(song) + " at the end.";
      document.getElementById("add-status").textContent = "Added “" + song.name + "” at the end; press “Save changes” to keep it.";
      sync();
    },
  });

  form.addEventListener("submit", function (e) {
    var name = document.getElementById("edit-name");
    if (!name.value.trim()) {
      e.preventDefault();
      var error = document.getElementById("edit-error") || MC.el("p", { class: "error", role: "alert", id: "edit-error" });
      error.textContent = "A playlist needs a name.";
      form.insertBefore(error, form.querySelector("p"));
      name.focus();
      return;
    }
    hidden.value = JSON.stringify(ids());
  });

  var copy = document.getElementById("share-copy");
  var shareUrl = document.getElementById("share-url");
  var shareStatus = document.getElementById("share-status");
  if (copy && shareUrl) {
    copy.addEventListener("click", function () {
      function fallback() {
        shareUrl.select();
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        shareStatus.textContent = ok ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.";
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(shareUrl.value).then(function () { shareStatus.textContent = "Copied."; }, fallback);
      } else {
        fallback();
      }
    });
    shareUrl.addEventListener("focus", function () { shareUrl.select(); });
  }
})();
