// Timeline paging: fetches further windows of server-rendered (escaped) event rows and keeps at
// most data-max-rows rows in the page, dropping from the far end as it grows.
(function () {
  "use strict";
  var root = document.getElementById("timeline");
  if (!root) return;
  var list = document.getElementById("events");
  var maxRows = parseInt(root.dataset.maxRows, 10) || 2000;
  var pageSize = parseInt(root.dataset.page, 10) || 200;
  var total = parseInt(root.dataset.total, 10) || 0;
  var start = parseInt(root.dataset.start, 10) || 0;
  var end = parseInt(root.dataset.end, 10) || 0;
  var busy = false;

  function control(kind) {
    return root.querySelector('[data-load="' + kind + '"]');
  }

  function makeControl(kind) {
    var a = document.createElement("a");
    a.className = "btn btn-sm btn-block " + (kind === "more" ? "load-more" : "load-earlier");
    a.setAttribute("data-load", kind);
    if (kind === "more") root.appendChild(a); else root.insertBefore(a, list);
    return a;
  }

  function versionQuery() {
    return "version=" + encodeURIComponent(root.dataset.version);
  }

  function refreshControls() {
    var earlier = control("earlier");
    if (start > 0) {
      earlier = earlier || makeControl("earlier");
      earlier.textContent = "Load earlier events (" + start + " before)";
      earlier.href = "?" + versionQuery() + "&start=" + Math.max(0, start - pageSize);
    } else if (earlier) {
      earlier.remove();
    }
    var more = control("more");
    if (end < total) {
      more = more || makeControl("more");
      more.textContent = "Load more events (showing " + (start + 1) + "–" + end + " of " + total + ")";
      more.href = "?" + versionQuery() + "&start=" + end;
    } else if (more) {
      more.remove();
    }
    root.dataset.start = String(start);
    root.dataset.end = String(end);
  }

  function trim(fromTop) {
    while (list.children.length > maxRows) {
      if (fromTop) {
        list.firstElementChild.remove();
        start = parseInt(list.firstElementChild.dataset.index, 10);
      } else {
        list.lastElementChild.remove();
        end = parseInt(list.lastElementChild.dataset.index, 10) + 1;
      }
    }
  }

  function load(kind) {
    if (busy) return;
    busy = true;
    root.classList.add("is-loading");
    var from = kind === "more" ? end : Math.max(0, start - pageSize);
    var limit = kind === "more" ? pageSize : start - from;
    var url = root.dataset.url + "?" + versionQuery() + "&start=" + from + "&limit=" + limit;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        // The server escaped every value; DOMParser never runs scripts it parses.
        var doc = new DOMParser().parseFromString("<ol>" + data.html + "</ol>", "text/html");
        var rows = Array.prototype.slice.call(doc.body.firstElementChild.children);
        total = data.total;
        if (kind === "more") {
          rows.forEach(function (row) { list.appendChild(document.adoptNode(row)); });
          end = data.end;
          trim(true);
        } else {
          var before = document.documentElement.scrollHeight;
          var first = list.firstElementChild;
          rows.forEach(function (row) { list.insertBefore(document.adoptNode(row), first); });
          start = data.start;
          trim(false);
          window.scrollBy(0, document.documentElement.scrollHeight - before);
        }
        refreshControls();
      })
      .catch(function (error) {
        var note = document.createElement("p");
        note.className = "notice notice-error";
        note.textContent = "Could not load events (" + error.message + "). Try again.";
        root.appendChild(note);
      })
      .finally(function () {
        busy = false;
        root.classList.remove("is-loading");
      });
  }

  root.addEventListener("click", function (event) {
    var button = event.target.closest("[data-load]");
    if (!button) return;
    event.preventDefault();
    load(button.getAttribute("data-load"));
  });
})();
