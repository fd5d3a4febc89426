// Clip player for the expert review: plays the case's windows in turn, moves a playhead over
// the score timeline, and maps keys to player and label actions (documented on the page).
(function () {
  "use strict";
  var data = document.getElementById("timeline-data");
  var video = document.getElementById("player");
  if (!data || !video) return;
  var windows = JSON.parse(data.textContent).filter(function (w) { return w.in_case && w.preview_url; });
  var all = JSON.parse(data.textContent);
  var origin = all.length ? Math.min.apply(null, all.map(function (w) { return w.start; })) : 0;
  var span = all.length ? Math.max.apply(null, all.map(function (w) { return w.end; })) - origin : 1;
  var playhead = document.getElementById("playhead");
  var clock = document.getElementById("clock");
  var label = document.getElementById("window-label");
  var index = 0;

  function load(i, autoplay) {
    if (!windows.length) return;
    index = Math.max(0, Math.min(windows.length - 1, i));
    video.src = windows[index].preview_url;
    var original = document.getElementById("original-link");
    if (original && windows[index].original_url) original.href = windows[index].original_url;
    label.textContent = "#" + (index + 1) + "/" + windows.length + " · " + windows[index].score.toFixed(2);
    if (autoplay) video.play().catch(function () {});
    tick();
  }
  function now() { return windows.length ? windows[index].start + (video.currentTime || 0) : 0; }
  function tick() {
    var t = now();
    clock.textContent = t.toFixed(1) + " s";
    if (playhead) {
      var x = ((t - origin) / (span || 1)) * 1000;
      playhead.setAttribute("x1", x); playhead.setAttribute("x2", x);
    }
  }
  function toggle() { if (video.paused) { video.play().catch(function () {}); } else { video.pause(); } }

  video.addEventListener("timeupdate", tick);
  video.addEventListener("ended", function () { if (index < windows.length - 1) load(index + 1, true); });
  document.getElementById("btn-play").addEventListener("click", toggle);
  document.getElementById("btn-prev").addEventListener("click", function () { load(index - 1, !video.paused); });
  document.getElementById("btn-next").addEventListener("click", function () { load(index + 1, !video.paused); });
  document.querySelectorAll("#timeline rect.bar").forEach(function (rect) {
    rect.addEventListener("click", function () {
      var seg = Number(rect.getAttribute("data-segment"));
      var i = windows.findIndex(function (w) { return w.segment === seg; });
      if (i >= 0) load(i, true);
    });
  });

  function pick(name, value) {
    var input = document.querySelector('input[name="' + name + '"][value="' + value + '"]');
    if (input) { input.checked = true; input.dispatchEvent(new Event("change", { bubbles: true })); }
  }
  function setSpan(id) {
    var input = document.getElementById(id);
    if (input) input.value = now().toFixed(1);
  }
  var keys = {
    " ": toggle, k: toggle,
    j: function () { load(index - 1, !video.paused); }, ArrowLeft: function () { load(index - 1, !video.paused); },
    l: function () { load(index + 1, !video.paused); }, ArrowRight: function () { load(index + 1, !video.paused); },
    "1": function () { pick("verdict", "abuse"); },
    "2": function () { pick("verdict", "not_abuse"); },
    "3": function () { pick("verdict", "unsure"); },
    "[": function () { setSpan("id_span_start_seconds"); },
    "]": function () { setSpan("id_span_end_seconds"); },
    e: function () { pick("outcome", "escalate"); },
    d: function () { pick("outcome", "dismiss"); }
  };
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) && target.type !== "radio")) return;
    var action = keys[event.key] || keys[event.key.toLowerCase()];
    if (!action) return;
    event.preventDefault();
    action();
  });
  load(0, false);
})();
