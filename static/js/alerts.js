// Live alerts for signed-in users: one websocket to /ws/alerts/, a toast in #alerts for every
// new case, and every message re-dispatched as a DOM event so portal pages update rows live:
//   document.addEventListener("abusewatch:message", (e) => { const msg = e.detail; ... });
(function () {
  "use strict";

  var MIN_DELAY_MS = 1000;
  var MAX_DELAY_MS = 30000;
  var TOAST_MS = 20000;
  var delay = MIN_DELAY_MS;
  // Labels come translated from the page (data-label-* on #alerts); English is the fallback.
  function label(name, fallback) {
    var box = document.getElementById("alerts");
    return (box && box.getAttribute("data-label-" + name)) || fallback;
  }

  function url() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + "/ws/alerts/";
  }

  function text(tag, className, value) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    node.textContent = value;
    return node;
  }

  function toast(caseData) {
    var box = document.getElementById("alerts");
    if (!box || !caseData) return;
    var item = document.createElement("div");
    item.className = "alert-toast band-" + caseData.band;
    item.setAttribute("role", "alert");
    var bandLabel = caseData.band === "violent" ? label("violent", "Violent")
      : caseData.band === "uncertain" ? label("uncertain", "Needs review") : caseData.band;
    item.appendChild(text("strong", "band", bandLabel));
    item.appendChild(text("span", "where", " " + caseData.site_name + " / " + caseData.camera_name));
    item.appendChild(text("span", "score", " " + label("score", "score") + " " + Number(caseData.peak_score).toFixed(2)));
    item.appendChild(text("time", "when", " " + (caseData.started_at_display || caseData.started_at)));
    var link = text("a", "open", " " + label("open", "Open case"));
    // The server sends each role to the page it works the case on (review, report or camera).
    link.href = "/cases/" + encodeURIComponent(caseData.id) + "/";
    item.appendChild(link);
    var close = text("button", "dismiss", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", label("dismiss", "Dismiss"));
    close.addEventListener("click", function () { item.remove(); });
    item.appendChild(close);
    box.prepend(item);
    window.setTimeout(function () { item.remove(); }, TOAST_MS);
  }

  function connect() {
    var socket;
    try {
      socket = new WebSocket(url());
    } catch (error) {
      schedule();
      return;
    }
    socket.addEventListener("open", function () { delay = MIN_DELAY_MS; });
    socket.addEventListener("message", function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (error) { return; }
      if (msg.type === "case.alert") toast(msg.case);
      document.dispatchEvent(new CustomEvent("abusewatch:message", { detail: msg }));
    });
    socket.addEventListener("close", function (event) {
      // 4401/4403: not signed in or no role: the server will refuse again, so stop trying.
      if (event.code === 4401 || event.code === 4403) return;
      schedule();
    });
  }

  function schedule() {
    // Exponential backoff with jitter so a restarted server is not hit by every tab at once.
    var wait = delay * (0.5 + Math.random() / 2);
    delay = Math.min(delay * 2, MAX_DELAY_MS);
    window.setTimeout(connect, wait);
  }

  connect();
})();
