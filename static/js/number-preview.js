// Live preview on a routing number's page: as the general settings change, ask the server what callers would
// hear (the same function the call flow uses) and show it. No build step, no framework.
(function () {
  "use strict";
  var form = document.getElementById("general-form");
  var preview = document.getElementById("preview");
  if (!form || !preview) return;
  var url = form.dataset.previewUrl;
  var timer = null;
  var latest = 0;

  function field(name) {
    return form.elements["general-" + name];
  }

  function refresh() {
    var body = new FormData();
    body.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
    body.append("greeting", field("greeting").value);
    body.append("language", field("language").value);
    if (field("greeting_only").checked) body.append("greeting_only", "on");
    var request = ++latest;
    fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (data) {
        if (request !== latest) return; // an older answer arriving late must not win
        preview.textContent = data.text || "(nothing: add a greeting or options)";
        preview.classList.remove("stale");
      })
      .catch(function () { preview.classList.add("stale"); });
  }

  function schedule() {
    preview.classList.add("stale");
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }

  ["greeting", "language", "greeting_only"].forEach(function (name) {
    var element = field(name);
    if (!element) return;
    element.addEventListener("input", schedule);
    element.addEventListener("change", schedule);
  });
})();
