// The camera wall: each still is fetched again at a low rate, and at once (at most every
// 10 s a camera) when the socket reports the camera's status or a newly scored window. The last-minutes player plays the
// camera's recent windows in turn. No inline handlers (CSP).
(function () {
  var wall = document.getElementById("camera-wall");
  if (wall) {
    var every = Math.max(10, Number(wall.getAttribute("data-refresh")) || 30) * 1000;
    var lastRefresh = {};
    var refresh = function (img) {
      var camera = img.closest("[data-camera]").getAttribute("data-camera");
      var now = Date.now();
      if (lastRefresh[camera] && now - lastRefresh[camera] < 10000) return;
      lastRefresh[camera] = now;
      // The query only defeats the browser's cache; the server ignores it.
      img.src = img.getAttribute("data-src") + "?t=" + now;
    };
    setInterval(function () { wall.querySelectorAll("img.snapshot").forEach(refresh); }, every);
    document.addEventListener("abusewatch:message", function (event) {
      var message = event.detail || {};
      var camera = null;
      if (message.type === "camera.status" && message.camera) camera = message.camera.id;
      else if (message.type === "detection.scored" && message.detection) camera = message.detection.camera;
      if (camera == null) return;
      var img = wall.querySelector('[data-camera="' + camera + '"] img.snapshot');
      if (img) refresh(img);
    });
  }
  var player = document.getElementById("recent-player");
  var data = document.getElementById("recent-playlist");
  if (player && data) {
    var playlist = JSON.parse(data.textContent || "[]");
    var index = 0;
    var label = document.getElementById("recent-label");
    var position = document.getElementById("recent-position");
    var load = function (i, autoplay) {
      if (i < 0 || i >= playlist.length) return;
      index = i;
      player.src = playlist[i].url;
      label.textContent = playlist[i].label;
      position.textContent = (i + 1) + " / " + playlist.length;
      if (autoplay) player.play().catch(function () {});
    };
    player.addEventListener("ended", function () { load(index + 1, true); });
    player.addEventListener("error", function () { load(index + 1, true); });
    load(0, false);
  }
})();
