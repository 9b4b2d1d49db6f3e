// The JSON editor: checks the text as you type and says where it breaks, keeps the
// save button off while the JSON is invalid, and pretty-prints on request. No HTML is built
// from strings here, and nothing here is needed for the form to work without JavaScript (the
// server checks everything again).
(function () {
  "use strict";

  function lineAndColumn(text, position) {
    var before = text.slice(0, position);
    var line = before.split("\n").length;
    var column = position - before.lastIndexOf("\n");
    return "line " + line + ", column " + column;
  }

  function describe(error, text) {
    var message = String((error && error.message) || error);
    var match = /position (\d+)/.exec(message);
    if (match && message.indexOf("line ") === -1) {
      message += " (" + lineAndColumn(text, parseInt(match[1], 10)) + ")";
    }
    return message;
  }

  function check(form) {
    var area = form.querySelector("[data-json-editor]");
    var status = form.querySelector("[data-json-status]");
    var submit = form.querySelector("[data-json-submit]");
    if (!area) return true;
    var ok = true;
    var text = area.value;
    try {
      JSON.parse(text);
    } catch (error) {
      ok = false;
      if (status) status.textContent = "Invalid JSON: " + describe(error, text);
    }
    if (ok && status) status.textContent = "Valid JSON.";
    if (status) {
      status.classList.toggle("is-valid", ok);
      status.classList.toggle("is-invalid", !ok);
    }
    area.classList.toggle("is-invalid", !ok);
    area.setAttribute("aria-invalid", ok ? "false" : "true");
    if (submit) submit.disabled = !ok;
    return ok;
  }

  document.querySelectorAll("form[data-json-form]").forEach(function (form) {
    var area = form.querySelector("[data-json-editor]");
    if (!area) return;
    area.addEventListener("input", function () { check(form); });
    form.addEventListener("submit", function (event) {
      if (!check(form)) {
        event.preventDefault();
        area.focus();
      }
    });
    var formatButton = form.querySelector("[data-json-format]");
    if (formatButton) {
      formatButton.addEventListener("click", function () {
        if (!check(form)) return;
        area.value = JSON.stringify(JSON.parse(area.value), null, 2);
        check(form);
      });
    }
    // Tab inserts two spaces instead of leaving the editor.
    area.addEventListener("keydown", function (event) {
      if (event.key !== "Tab" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      var start = area.selectionStart;
      var end = area.selectionEnd;
      area.value = area.value.slice(0, start) + "  " + area.value.slice(end);
      area.selectionStart = area.selectionEnd = start + 2;
      check(form);
    });
    check(form);
  });
})();
