// Draws the server-built Plotly figures. Figures arrive as JSON in <script type=
// "application/json"> elements (Django's json_script) and are parsed, never evaluated.
(function () {
  "use strict";
  var CONFIG = { displayModeBar: false, responsive: true, displaylogo: false, scrollZoom: false };

  function isLocalPath(url) {
    return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/" &&
      url.indexOf("\\") === -1;
  }

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source || !window.Plotly) return;
    var figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(el, figure.data || [], figure.layout || {}, CONFIG).then(function () {
      el.classList.add("is-drawn");
    });
    // A click opens the sessions (or errors) behind the point.
    el.on("plotly_click", function (event) {
      var point = event && event.points && event.points[0];
      var url = point && point.customdata;
      if (isLocalPath(url)) window.location.assign(url);
    });
  }

  function init() {
    document.querySelectorAll("[data-chart]").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
