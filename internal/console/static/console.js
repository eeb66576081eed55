// The console's own script: what htmx does not do by itself.
(function () {
  "use strict";
  var flash = function () { return document.getElementById("flash"); };
  function show(msg) {
    var f = flash();
    if (!f) return;
    var div = document.createElement("div");
    div.className = "message error";
    div.setAttribute("role", "alert");
    div.textContent = msg + " (" + new Date().toISOString().slice(11, 19) + "Z)";
    f.replaceChildren(div);
  }
  // The scheduler did not answer at all (down, or the network): htmx
  // swaps nothing, so say it.
  document.body.addEventListener("htmx:sendError", function () {
    show("The scheduler did not answer: it may be restarting or unreachable. The page shows what it last knew.");
  });
  // A page's refreshes ask for a part of it (?part=…). An error a refresh
  // met (Redis down) is cleared by the next refresh that succeeds; an error
  // of a person's action stays until dismissed.
  function refresh(e) {
    var c = e.detail.requestConfig;
    return !!c && typeof c.path === "string" && c.path.indexOf("part=") >= 0;
  }
  document.body.addEventListener("htmx:afterSwap", function (e) {
    var f = flash();
    if (f && e.detail.target === f) f.dataset.fromRefresh = refresh(e) ? "1" : "";
  });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    var f = flash();
    if (f && e.detail.successful && refresh(e) && f.dataset.fromRefresh === "1") {
      f.replaceChildren();
      f.dataset.fromRefresh = "";
    }
  });
  // A refresh replaces the page's parts: keep the panels a person opened
  // open, and the picked dates picked.
  var open = [];
  document.body.addEventListener("htmx:beforeSwap", function (e) {
    open = Array.prototype.map.call(e.detail.target.querySelectorAll("details[open][id]"), function (d) { return d.id; });
  });
  document.body.addEventListener("htmx:afterSettle", function () {
    open.forEach(function (id) {
      var d = document.getElementById(id);
      if (d) d.open = true;
    });
  });
  // A bar of the timeline loads its task's log below the chart.
  document.body.addEventListener("click", function (e) {
    var bar = e.target.closest && e.target.closest("[data-task-log]");
    if (!bar) return;
    e.preventDefault();
    htmx.ajax("GET", bar.getAttribute("data-task-log"), { target: "#task-log", swap: "innerHTML" }).then(function () {
      var t = document.getElementById("task-log");
      if (t) t.scrollIntoView({ block: "nearest" });
    });
  });
})();
