// plcwatch console live updates: new alerts arrive as server-sent events
// and are listed at the top of the page. Pages work without this script.
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var box = document.getElementById("live");
  var list = document.getElementById("live-list");
  if (!box || !list) { return; }
  var es = new EventSource("/events");
  es.addEventListener("open", function () { document.body.setAttribute("data-live", "open"); });
  es.addEventListener("error", function () { document.body.setAttribute("data-live", "reconnecting"); });
  es.addEventListener("alert", function (ev) {
    var a;
    try { a = JSON.parse(ev.data); } catch (e) { return; }
    var li = document.createElement("li");
    var link = document.createElement("a");
    link.href = a.url;
    link.setAttribute("data-alert", a.id);
    link.textContent = a.id + " [" + a.severity + "] " + a.device + ": " + a.title;
    li.appendChild(link);
    list.insertBefore(li, list.firstChild);
    box.hidden = false;
  });
})();
