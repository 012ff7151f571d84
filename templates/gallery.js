(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var images = document.querySelectorAll("main img");

  // Every tile's image loaded, or marked broken: body[data-loaded="n/m"].
  function tally() {
    var loaded = 0;
    images.forEach(function (img) {
      if (img.complete && img.naturalWidth > 0) loaded++;
      else if (img.complete) img.classList.add("broken");
    });
    document.body.dataset.loaded = loaded + "/" + images.length;
  }
  images.forEach(function (img) {
    img.addEventListener("load", tally);
    img.addEventListener("error", function () { img.classList.add("broken"); tally(); });
  });
  window.addEventListener("load", tally);

  var sections = Array.prototype.slice.call(document.querySelectorAll("main section"));
  var tiles = Array.prototype.slice.call(document.querySelectorAll("main img[data-file]"));
  function figureOf(img) { return img.closest("figure"); }

  // Tile size: a CSS variable, kept across visits.
  var size = $("size");
  function setSize(px) { document.documentElement.style.setProperty("--tile", px + "px"); }
  try { if (localStorage.getItem("genimg-tile")) size.value = localStorage.getItem("genimg-tile"); } catch (e) {}
  setSize(size.value);
  size.addEventListener("input", function () {
    setSize(size.value);
    try { localStorage.setItem("genimg-tile", size.value); } catch (e) {}
  });

  // The filter: prompts whose name or text holds every word typed.
  var filter = $("filter");
  sections.forEach(function (s) {
    var text = [];
    s.querySelectorAll("h2, .prompt, details p, .file").forEach(function (e) { text.push(e.textContent); });
    s.dataset.search = text.join(" ").toLowerCase();
  });
  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shownPrompts = 0, shownImages = 0;
    sections.forEach(function (s) {
      var hit = words.every(function (w) { return s.dataset.search.indexOf(w) >= 0; });
      s.hidden = !hit;
      var chip = document.querySelector('nav a[data-section="' + CSS.escape(s.id) + '"]');
      if (chip) chip.hidden = !hit;
      if (hit) { shownPrompts++; shownImages += s.querySelectorAll("img[data-file]").length; }
    });
    document.querySelectorAll("main h2.part").forEach(function (h) {
      var next = h.nextElementSibling, any = false;
      while (next && next.tagName === "SECTION") { any = any || !next.hidden; next = next.nextElementSibling; }
      h.hidden = !any;
    });
    $("shown").textContent = shownPrompts + " of " + sections.length + " prompts · " + shownImages + " images shown";
  }
  filter.addEventListener("input", applyFilter);
  // Esc in the filter empties it, and a second Esc leaves it.
  filter.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    e.preventDefault();
    if (filter.value) { filter.value = ""; applyFilter(); } else filter.blur();
  });
  applyFilter();

  // Picks: file names, kept in the browser under the folder's path, and in DIR/picks.txt
  // when the page is served by `genimg gallery --serve`.
  var folder = document.body.dataset.folder || location.pathname.replace(/[^\/]*$/, "");
  var storeKey = "genimg-picks:" + folder;
  var served = location.protocol.indexOf("http") === 0;
  var picks = [];
  try { picks = JSON.parse(localStorage.getItem(storeKey) || "[]"); } catch (e) { picks = []; }
  function picksText() { return picks.length ? picks.join("\n") + "\n" : ""; }
  function quote(name) { return "'" + name.replace(/'/g, "'\\''") + "'"; }
  function shellLine() {
    return picks.length ? "mkdir -p picked && cp -- " + picks.map(quote).join(" ") + " picked/" : "";
  }
  var download = $("picks-download");
  // Served, the folder's picks.txt is read first; picks made before it arrives wait in
  // `early` and are applied on top of it, then saved.
  var folderRead = !served, early = [], clearedEarly = false;
  function savePicks() {
    try { localStorage.setItem(storeKey, JSON.stringify(picks)); } catch (e) {}
    if (served && folderRead) {
      fetch("picks.txt", { method: "POST", headers: { "Content-Type": "text/plain" }, body: picksText() })
        .then(function (r) { $("picks-saved").textContent = r.ok ? "saved to picks.txt in the folder" : "not saved: " + r.status; })
        .catch(function () { $("picks-saved").textContent = "not saved: the server is gone"; });
    }
    showPicks();
  }
  function showPicks() {
    tiles.forEach(function (img) {
      var on = picks.indexOf(img.dataset.file) >= 0;
      figureOf(img).classList.toggle("picked", on);
      var button = figureOf(img).querySelector("button.pick");
      if (button) button.textContent = on ? "★ picked" : "☆ pick";
    });
    $("pick-count").textContent = picks.length;
    if (download.dataset.url) URL.revokeObjectURL(download.dataset.url);
    download.dataset.url = URL.createObjectURL(new Blob([picksText()], { type: "text/plain" }));
    download.href = download.dataset.url;
    $("picks-shell").value = shellLine();
    if (current >= 0) $("lb-pick").textContent = isPicked(order[current]) ? "Unpick (p)" : "Pick (p)";
  }
  function isPicked(img) { return picks.indexOf(img.dataset.file) >= 0; }
  function togglePick(img) {
    var i = picks.indexOf(img.dataset.file);
    if (i >= 0) picks.splice(i, 1); else picks.push(img.dataset.file);
    if (!folderRead) early.push([img.dataset.file, i < 0]);
    savePicks();
  }

  // Compare: 2 to 4 selected images side by side.
  var selected = [];
  function toggleSelect(img) {
    var i = selected.indexOf(img);
    if (i >= 0) selected.splice(i, 1);
    else { if (selected.length === 4) unselect(selected.shift()); selected.push(img); }
    showSelected();
  }
  function unselect(img) { var box = figureOf(img).querySelector("input.cmp"); if (box) box.checked = false; }
  function showSelected() {
    tiles.forEach(function (img) {
      var on = selected.indexOf(img) >= 0;
      figureOf(img).classList.toggle("selected", on);
      var box = figureOf(img).querySelector("input.cmp");
      if (box) box.checked = on;
    });
    var button = $("compare");
    button.disabled = selected.length < 2;
    button.textContent = "Compare" + (selected.length ? " (" + selected.length + ")" : "");
    if (current >= 0) $("lb-select").textContent = selected.indexOf(order[current]) >= 0 ? "Unselect (c)" : "Select to compare (c)";
  }
  function openCompare() {
    if (selected.length < 2) return;
    var row = $("cmp-row");
    row.textContent = "";
    selected.forEach(function (img) {
      var cell = document.createElement("figure");
      var big = document.createElement("img");
      big.src = img.dataset.full;
      big.alt = img.dataset.file;
      var cap = document.createElement("figcaption");
      cap.textContent = img.dataset.file + " · " + (figureOf(img).querySelector(".meta") || {}).textContent;
      cell.appendChild(big);
      cell.appendChild(cap);
      row.appendChild(cell);
    });
    row.style.setProperty("--n", selected.length);
    $("compare-view").hidden = false;
  }
  $("compare").addEventListener("click", openCompare);
  $("cmp-close").addEventListener("click", function () { $("compare-view").hidden = true; });

  // Each tile: a pick button and a compare box.
  tiles.forEach(function (img) {
    var bar = document.createElement("div");
    bar.className = "acts";
    var pick = document.createElement("button");
    pick.type = "button";
    pick.className = "pick";
    pick.addEventListener("click", function () { togglePick(img); });
    var label = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.className = "cmp";
    box.addEventListener("change", function () { toggleSelect(img); });
    label.appendChild(box);
    label.appendChild(document.createTextNode(" compare"));
    bar.appendChild(pick);
    bar.appendChild(label);
    figureOf(img).querySelector("figcaption").prepend(bar);
  });

  // The lightbox: the full image, its prompt, revised prompt, size and cost.
  var order = [], current = -1;
  var big = document.createElement("img");
  big.id = "lb-img";
  $("lb-stage").appendChild(big);
  function visibleTiles() {
    return tiles.filter(function (img) { return !img.closest("section").hidden; });
  }
  function textOf(root, selector) { var e = root && root.querySelector(selector); return e ? e.textContent : ""; }
  function show(i) {
    current = (i + order.length) % order.length;
    var img = order[current], fig = figureOf(img), section = img.closest("section");
    $("lb-img").src = img.dataset.full;
    $("lb-img").alt = img.dataset.file;
    $("lb-file").textContent = img.dataset.file;
    $("lb-meta").textContent = textOf(fig, ".meta");
    $("lb-prompt").textContent = textOf(section, ".prompt") || textOf(fig, "details:not(.revised) p");
    var revised = textOf(fig, ".revised p");
    $("lb-revised").textContent = revised;
    $("lb-revised-box").hidden = !revised;
    $("lb-pos").textContent = (current + 1) + " of " + order.length;
    $("lightbox").dataset.file = img.dataset.file;
    showPicks();
    showSelected();
  }
  // The tile focused when the lightbox opened gets the focus back when it closes; while it
  // is open, the focus is in it (Enter never reaches a tile behind it).
  var returnFocus = null;
  function openLightbox(img) {
    order = visibleTiles();
    returnFocus = document.activeElement;
    $("lightbox").hidden = false;
    show(order.indexOf(img));
    $("lb-close").focus();
  }
  function closeLightbox() {
    $("lightbox").hidden = true;
    current = -1;
    if (returnFocus && returnFocus.focus) returnFocus.focus();
    returnFocus = null;
  }
  tiles.forEach(function (img) {
    // On the tile's link, so that Enter on it (a click of the link) opens the lightbox too.
    // A tile without a link (an SVG) is reached with Tab and opened with Enter too.
    var span = img.closest("span.thumb");
    if (span) {
      span.tabIndex = 0;
      span.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openLightbox(img); }
      });
    }
    (img.closest("a.thumb") || img).addEventListener("click", function (e) {
      if (e.ctrlKey || e.metaKey || e.shiftKey) return;
      e.preventDefault();
      openLightbox(img);
    });
  });
  $("lb-close").addEventListener("click", closeLightbox);
  $("lb-pick").addEventListener("click", function () { togglePick(order[current]); });
  $("lb-select").addEventListener("click", function () { toggleSelect(order[current]); });
  $("lb-img").addEventListener("click", function () { show(current + 1); });

  // The picks' panel.
  $("show-picks").addEventListener("click", function () { $("picks-view").hidden = false; });
  $("picks-close").addEventListener("click", function () { $("picks-view").hidden = true; });
  $("clear-picks").addEventListener("click", function () {
    // Before the folder's picks arrive: they are cleared too, and later picks kept.
    if (!folderRead) { clearedEarly = true; early = []; }
    picks = [];
    savePicks();
  });
  $("copy-shell").addEventListener("click", function () {
    var area = $("picks-shell");
    area.select();
    if (navigator.clipboard) navigator.clipboard.writeText(area.value).catch(function () { document.execCommand("copy"); });
    else document.execCommand("copy");
  });

  document.addEventListener("keydown", function (e) {
    if (e.target.tagName === "INPUT" && e.target.type !== "checkbox" && e.target.type !== "range") return;
    if (e.target.tagName === "TEXTAREA" || e.ctrlKey || e.metaKey || e.altKey) return;
    var box = !$("lightbox").hidden;
    if (e.key === "Escape") {
      if (!$("compare-view").hidden) $("compare-view").hidden = true;
      else if (!$("picks-view").hidden) $("picks-view").hidden = true;
      else if (box) closeLightbox();
    } else if (box && e.key === "ArrowRight") show(current + 1);
    else if (box && e.key === "ArrowLeft") show(current - 1);
    else if (box && (e.key === "p" || e.key === "P")) togglePick(order[current]);
    else if (box && (e.key === "c" || e.key === "C")) toggleSelect(order[current]);
    else if (e.key === "/" && !box) { e.preventDefault(); filter.focus(); return; }
    else return;
    e.preventDefault();
  });

  showPicks();
  showSelected();
  // Served by `genimg gallery --serve`: the folder's picks.txt is where picks live (each
  // serving has a port of its own, so the browser's storage does not outlive it). Without
  // one, the picks kept in the browser are saved there.
  if (served) {
    fetch("picks.txt", { cache: "no-store" }).then(function (r) {
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(r.status);
      return r.text();
    }).then(function (text) {
      if (clearedEarly) picks = [];
      else if (text !== null) {
        picks = [];
        text.split(/\r?\n/).forEach(function (line) {
          var name = line.trim();
          if (name && picks.indexOf(name) < 0) picks.push(name);
        });
      }
      early.forEach(function (change) {
        var i = picks.indexOf(change[0]);
        if (change[1] && i < 0) picks.push(change[0]);
        else if (!change[1] && i >= 0) picks.splice(i, 1);
      });
      var unsaved = text === null ? picks.length > 0 : early.length > 0 || clearedEarly;
      folderRead = true;
      early = [];
      if (unsaved) savePicks();
      else {
        try { localStorage.setItem(storeKey, JSON.stringify(picks)); } catch (e) {}
        $("picks-saved").textContent = "read from picks.txt in the folder";
        showPicks();
      }
    }).catch(function () {
      // Never overwrite a picks.txt that could not be read.
      served = false;
      folderRead = true;
      $("picks-saved").textContent = "picks.txt in the folder could not be read; picks stay in this browser";
      showPicks();
    });
  }
})();
