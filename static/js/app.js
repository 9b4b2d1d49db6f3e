// Small progressive enhancements shared by every page. No HTML is built from strings here.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Selects and checkboxes marked data-autosubmit submit their form when changed.
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("[data-autosubmit]") && el.form) {
      el.form.submit();
    }
    if (el.matches && el.matches("[data-range-select]")) {
      var custom = el.form && el.form.querySelector("[data-custom-range]");
      if (custom) {
        custom.classList.toggle("js-hidden", el.value !== "custom");
        if (el.value !== "custom") {
          custom.querySelectorAll("input").forEach(function (input) { input.value = ""; });
        }
      }
    }
  });

  // Whole table rows open their session (links and selections inside keep working).
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("tr[data-href]");
    if (!row || event.target.closest("a, button, input, select, label")) return;
    if (window.getSelection && String(window.getSelection())) return;
    var href = row.getAttribute("data-href");
    if (href && href.charAt(0) === "/" && href.charAt(1) !== "/") window.location.assign(href);
  });

  // Copy buttons: data-copy holds the text, data-copy-target names an element to copy from.
  document.addEventListener("click", function (event) {
    var el = event.target.closest && event.target.closest("[data-copy], [data-copy-target]");
    if (!el || !navigator.clipboard) return;
    var text = el.hasAttribute("data-copy")
      ? el.getAttribute("data-copy")
      : (document.getElementById(el.getAttribute("data-copy-target")) || {}).textContent || "";
    navigator.clipboard.writeText(text).then(function () {
      el.classList.add("copied");
      window.setTimeout(function () { el.classList.remove("copied"); }, 1200);
    });
  });

  // Close an open popover when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.popover[open]").forEach(function (details) {
      if (!details.contains(event.target)) details.removeAttribute("open");
    });
  });

  // Forms marked data-confirm ask before they submit (deleting an alert rule).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // The alert rule form shows only the fields of the chosen event.
  var eventSelect = document.querySelector("#alert-form select[name=event]");
  function showEventFields() {
    document.querySelectorAll("#alert-form fieldset[data-event]").forEach(function (fieldset) {
      fieldset.classList.toggle("js-hidden", fieldset.getAttribute("data-event") !== eventSelect.value);
    });
  }
  if (eventSelect) {
    eventSelect.addEventListener("change", showEventFields);
    showEventFields();
  }

  // Auto-refresh (overview): reload while the box is ticked and the tab is visible.
  var toggle = document.querySelector(".refresh-toggle input[name=refresh]");
  if (toggle && toggle.checked) {
    var seconds = parseInt(toggle.form.getAttribute("data-refresh-seconds"), 10) || 30;
    window.setInterval(function () {
      if (document.visibilityState === "visible") window.location.reload();
    }, seconds * 1000);
  }
})();
