// Live updates for the portal pages: alerts.js re-dispatches every websocket message as an
// `abusewatch:message` event; rows and badges marked with data-case / data-camera /
// data-report ids are updated in place. Labels come from #status-labels (translated).
(function () {
  "use strict";
  var labelsNode = document.getElementById("status-labels");
  var labels = labelsNode ? JSON.parse(labelsNode.textContent) : {};

  function label(kind, value) { return (labels[kind] && labels[kind][value]) || value; }
  function detailLabel(value) {
    var openings = labels.detail_opening || {};
    for (var opening in openings) {
      if (value.indexOf(opening) === 0) return openings[opening] + value.slice(opening.length);
    }
    return label("detail", value);
  }
  function setBadge(scope, value, kind) {
    scope.querySelectorAll('[data-field="status"]').forEach(function (badge) {
      badge.textContent = label(kind, value);
      badge.className = badge.className.replace(/\bstatus-\S+/g, "").trim() + " status-" + value;
    });
    scope.classList.add("flash");
    setTimeout(function () { scope.classList.remove("flash"); }, 1600);
  }
  function text(tag, value) { var el = document.createElement(tag); el.textContent = value; return el; }

  function onCase(message) {
    var c = message.case;
    if (!c) return;
    var rows = document.querySelectorAll('[data-case="' + c.id + '"]');
    rows.forEach(function (row) { setBadge(row, c.status, "case"); });
    var queue = document.querySelector('[data-live="queue"] tbody');
    if (message.type === "case.alert" && !rows.length && queue && c.band === "uncertain") {
      var empty = queue.querySelector("tr.empty");
      if (empty) empty.remove();
      var tr = document.createElement("tr");
      tr.setAttribute("data-case", c.id);
      tr.className = "new flash";
      tr.appendChild(text("td", String(c.id)));
      tr.appendChild(text("td", Number(c.peak_score).toFixed(2)));
      tr.appendChild(text("td", c.site_name));
      tr.appendChild(text("td", c.camera_name));
      tr.appendChild(text("td", c.started_at_display || c.started_at));
      var status = document.createElement("td");
      var badge = text("span", label("case", c.status));
      badge.className = "status status-" + c.status;
      badge.setAttribute("data-field", "status");
      status.appendChild(badge);
      tr.appendChild(status);
      var open = document.createElement("td");
      var link = text("a", label("action", "open"));
      link.className = "button";
      link.href = (document.body.getAttribute("data-review-base") || "/reviews/cases/") + c.id + "/";
      open.appendChild(link);
      tr.appendChild(open);
      queue.insertBefore(tr, queue.firstChild);
    }
    var cases = document.querySelector('[data-live="cases"] tbody');
    if (message.type === "case.alert" && !rows.length && cases) {
      var row = document.createElement("tr");
      row.setAttribute("data-case", c.id);
      row.className = "new flash";
      // The number links to the case page, as in rendered rows.
      var base = cases.closest("table").getAttribute("data-case-base");
      var idCell = document.createElement("td");
      if (base) {
        var caseLink = text("a", String(c.id));
        caseLink.href = base.replace(/0\/$/, c.id + "/");
        idCell.appendChild(caseLink);
      } else idCell.textContent = String(c.id);
      row.appendChild(idCell);
      row.appendChild(text("td", c.camera_name));
      row.appendChild(text("td", c.started_at_display || c.started_at));
      var band = text("span", label("band", c.band));
      band.className = "band band-" + c.band;
      var bandCell = document.createElement("td"); bandCell.appendChild(band); row.appendChild(bandCell);
      row.appendChild(text("td", Number(c.peak_score).toFixed(2)));
      var st = text("span", label("case", c.status));
      st.className = "status status-" + c.status; st.setAttribute("data-field", "status");
      var stCell = document.createElement("td"); stCell.appendChild(st); row.appendChild(stCell);
      cases.insertBefore(row, cases.firstChild);
    }
  }
  function onCamera(message) {
    var cam = message.camera;
    if (!cam) return;
    document.querySelectorAll('[data-camera="' + cam.id + '"]').forEach(function (row) {
      // A switched-off camera keeps its "switched off" badge: it is not offline (issue #15).
      if (!row.hasAttribute("data-disabled")) setBadge(row, cam.status, "camera");
      var detail = row.querySelector('[data-field="detail"]');
      if (detail) detail.textContent = detailLabel(cam.status_detail || "");
      var fps = row.querySelector('[data-field="fps"]');
      if (fps && cam.measured_fps != null) fps.textContent = Number(cam.measured_fps).toFixed(1);
      var last = row.querySelector('[data-field="last-frame"]');
      // The server formats it in the site's zone, as the page does (issue #15).
      if (last && cam.last_frame_at) last.textContent = cam.last_frame_display || cam.last_frame_at;
    });
  }
  function reportToast(list, r) {
    var box = document.getElementById("alerts");
    if (!box) return;
    var item = document.createElement("div");
    item.className = "alert-toast band-" + (r.band || "violent");
    item.setAttribute("role", "alert");
    item.setAttribute("data-toast-report", r.id);
    item.appendChild(text("strong", (list.getAttribute("data-label-new") || "New report") + " #" + r.id));
    item.appendChild(text("span", " " + r.site_name + " / " + r.camera_name + " · " + (r.sent_at_display || "")));
    box.prepend(item);
    setTimeout(function () { item.remove(); }, 20000);
  }
  function addReportRow(r) {
    // A report new to this list: a row at the top and a toast (issue #15: nothing appeared).
    var list = document.querySelector('[data-live="reports"]');
    var body = list && list.querySelector("tbody");
    if (!body || document.querySelector('[data-live="reports"] [data-report="' + r.id + '"]')) return;
    var empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    var tr = document.createElement("tr");
    tr.setAttribute("data-report", r.id);
    tr.setAttribute("data-case", r.case);
    tr.className = "new flash";
    var first = document.createElement("td");
    var link = text("a", String(r.id));
    var base = list.getAttribute("data-report-base") || "/reports/";
    link.href = base + r.id + "/";
    first.appendChild(link);
    tr.appendChild(first);
    tr.appendChild(text("td", r.site_name || ""));
    tr.appendChild(text("td", r.camera_name || ""));
    tr.appendChild(text("td", r.sent_at_display || r.sent_at));
    // In the reader's language (the page's labels), not the broadcaster's.
    var reason = text("td", label("reason", r.reason));
    if (r.follows_report) {
      var pill = text("span", " " + (list.getAttribute("data-label-follows") || "follows report") + " ");
      pill.className = "pill";
      var back = text("a", "#" + r.follows_report);
      back.href = base + r.follows_report + "/";
      pill.appendChild(back);
      reason.appendChild(pill);
    }
    tr.appendChild(reason);
    var st = document.createElement("td");
    var badge = text("span", label("report", r.status));
    badge.className = "status status-" + r.status;
    badge.setAttribute("data-field", "status");
    st.appendChild(badge);
    tr.appendChild(st);
    body.insertBefore(tr, body.firstChild);
    reportToast(list, r);
  }
  function onReport(message) {
    var r = message.report;
    if (!r) return;
    addReportRow(r);
    document.querySelectorAll('[data-report="' + r.id + '"]').forEach(function (row) { setBadge(row, r.status, "report"); });
  }
  document.addEventListener("abusewatch:message", function (event) {
    var message = event.detail || {};
    if (message.type === "case.alert" || message.type === "case.status") onCase(message);
    else if (message.type === "camera.status") onCamera(message);
    else if (message.type === "report.status") onReport(message);
  });
})();

// Copy buttons: <button data-copy="#id"> copies that element's text (the key fingerprint).
(function () {
  "use strict";
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.querySelector(button.getAttribute("data-copy"));
      if (!source) return;
      var value = source.textContent.trim();
      var done = function () { button.setAttribute("data-copied", "1"); button.textContent = "✓"; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(value).then(done, function () {});
      } else {
        var range = document.createRange();
        range.selectNodeContents(source);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
    });
  });
})();
