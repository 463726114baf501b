/* The Test call page: play the caller and the agents of a call on the local phone network.
   Plain JS, no build step. The page polls /test-call/state/ and posts actions to /test-call/legs/<uuid>/<action>/;
   the account's calls in progress come from /test-call/calls/. The URLs are data attributes of the call form. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var form = $("call-form");
  if (!form) { return; }
  var cfg = {
    stateUrl: form.getAttribute("data-state-url"),
    callsUrl: form.getAttribute("data-calls-url"),
    legUrl: form.getAttribute("data-leg-url"),
    hangupUrl: form.getAttribute("data-hangup-url")
  };
  var csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  var callUuid = null;
  var pollTimer = null;
  var endedAt = null;
  var spoken = {};
  var quiet = false;  // a resumed call: what was said before is not read aloud again
  var recorder = null;
  var POLL_MS = 700;
  var AFTER_END_POLL_MS = 2000;
  var AFTER_END_SECONDS = 90;
  var LIVE_POLL_MS = 5000;
  var liveTimer = null;

  var STATE_LABELS = {
    calling: "Calling", dialling: "Dialling", ringing: "Ringing", answered: "Answered", on_hold: "On hold",
    connected: "Connected", recording: "Recording", ended: "Ended"
  };

  function showError(message) { $("tc-error").textContent = message || ""; }

  function post(url, fields, file) {
    var body = new FormData();
    Object.keys(fields || {}).forEach(function (key) { body.append(key, fields[key]); });
    if (file) { body.append("audio", file, "voicemail.webm"); }
    return fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrf } })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok) { throw new Error(data.error || ("HTTP " + response.status)); }
          showError("");
          return data;
        });
      })
      .catch(function (error) { showError(error.message); throw error; });
  }

  function legAction(uuid, action, fields, file) {
    var url = cfg.legUrl.replace("UUID", uuid).replace("ACTION", action);
    var data = Object.assign({ call: callUuid }, fields || {});
    return post(url, data, file).then(poll, function () {});
  }

  // --- speech ------------------------------------------------------------------------------------------------

  function speak(text, language) {
    if (!$("speak").checked || !("speechSynthesis" in window) || !text) { return; }
    try {
      var utterance = new SpeechSynthesisUtterance(text);
      if (language) { utterance.lang = language; }
      window.speechSynthesis.speak(utterance);
    } catch (e) { /* speech is a nicety */ }
  }

  function speakNew(leg) {
    leg.transcript.forEach(function (entry) {
      var key = leg.uuid + ":" + entry.seq;
      if (spoken[key]) { return; }
      spoken[key] = true;
      if (quiet) { return; }
      if (entry.kind === "talk" && !endedAt) { speak(entry.text, entry.language); }
      // A key cut the announcement short: stop reading it aloud too.
      if (entry.kind === "barge_in" && "speechSynthesis" in window) { window.speechSynthesis.cancel(); }
    });
  }

  function holdMusic(url) {
    var audio = $("hold-music");
    if (url && $("speak").checked) {
      if (audio.getAttribute("src") !== url) { audio.setAttribute("src", url); }
      if (audio.paused) { audio.play().catch(function () {}); }
    } else if (!audio.paused) {
      audio.pause();
    }
  }

  // --- rendering -----------------------------------------------------------------------------------------------

  function phoneNumber(digits) { return digits ? "+" + digits : ""; }

  function entryText(entry) {
    switch (entry.kind) {
      case "talk": return "“" + entry.text + "”";
      case "stream": return "♪ audio " + (entry.url || "");
      case "input": return entry.text;
      case "input_result": return "sent: " + entry.text + (entry.timed_out ? " (timed out)" : "");
      case "dtmf": return "pressed " + entry.text;
      case "said": return "said “" + entry.text + "”";
      case "hold": return "♫ " + entry.text;
      case "beep": return "beep";
      case "recorded": return "message recorded: " + entry.text;
      default: return entry.text;
    }
  }

  var KIND_LABELS = { talk: "prompt", said: "you said", dtmf: "key", input_result: "input", hold: "hold", script: "script" };

  function renderLog(list, leg) {
    var shown = leg.transcript.filter(function (e) { return ["conversation", "conversation_end", "barge_in", "script"].indexOf(e.kind) < 0; });
    if (list.childElementCount === shown.length) { return; }
    list.innerHTML = "";
    shown.forEach(function (entry) {
      var item = document.createElement("li");
      item.className = "entry-" + entry.kind;
      var kind = document.createElement("span");
      kind.className = "k";
      kind.textContent = KIND_LABELS[entry.kind] || entry.kind.replace("_", " ");
      item.appendChild(kind);
      item.appendChild(document.createTextNode(" " + entryText(entry)));
      list.appendChild(item);
    });
    list.scrollTop = list.scrollHeight;
  }

  function lastPrompt(leg) {
    for (var i = leg.transcript.length - 1; i >= 0; i--) {
      var entry = leg.transcript[i];
      if (entry.kind === "talk") { return entry.text; }
      if (entry.kind === "connected") { return "You are connected. Talk!"; }
      if (entry.kind === "hold") { return entry.text === "hold music" ? "♫ Hold music…" : entry.text; }
      if (entry.kind === "beep") { return "Beep. Leave your message."; }
    }
    return leg.direction === "outbound" ? "Incoming call from " + phoneNumber(leg.from) : "Calling…";
  }

  function waitingText(leg) {
    var w = leg.waiting;
    if (leg.state === "ended") { return "Call ended (" + leg.status + ")."; }
    if (!w) { return ""; }
    if (w.kind === "input") {
      var parts = [];
      if (w.dtmf) { parts.push(w.max_digits === 1 ? "a key" : "keys"); }
      if (w.speech) { parts.push("a phrase" + (w.hints && w.hints.length ? " (" + w.hints.join(", ") + ")" : "")); }
      return "Listening for " + parts.join(" or ") + "…";
    }
    if (w.kind === "record") { return "● Recording: leave your message" + (w.end_on_key ? ", end with " + w.end_on_key : "") + "."; }
    if (w.kind === "ringing") { return "Ringing…"; }
    if (w.kind === "conversation") { return w.connected ? "Connected." : "On hold."; }
    if (w.kind === "talk") { return ""; }  // said by announcementText
    return "";
  }

  function seconds(value) {
    var rounded = Math.max(1, Math.round(value));
    return rounded === 1 ? "1 second" : rounded + " seconds";
  }

  // What the screen says while an announcement (a talk or a streamed file) plays, and what works meanwhile.
  function announcementText(leg, role) {
    var w = leg.waiting;
    if (!w || w.kind !== "talk" || leg.state === "ended") { return ""; }
    var length = w.seconds ? " (about " + seconds(w.seconds) + ")" : " (repeating)";
    var what = (w.media === "stream" ? "Audio playing" : "Announcement playing") + length + ". ";
    if (!w.barge_in) { return what + "Keys pressed now are not heard: wait for the end."; }
    return what + (role === "agent" ? "Accept or Decline now: no need to wait for the end." : "Press a key now to skip it.");
  }

  function renderAnnouncement(element, leg, role) {
    var text = announcementText(leg, role);
    element.textContent = text;
    element.hidden = !text;
  }

  function setState(element, leg) {
    element.textContent = STATE_LABELS[leg.state] || leg.state;
    element.className = "state " + leg.state;
  }

  function renderCaller(leg) {
    $("caller-to").textContent = phoneNumber(leg.to);
    setState($("caller-state"), leg);
    $("caller").className = "phone " + leg.state;
    $("caller-prompt").textContent = lastPrompt(leg);
    $("caller-waiting").textContent = waitingText(leg);
    renderAnnouncement($("caller-announcement"), leg, "caller");
    var ended = leg.state === "ended";
    Array.prototype.forEach.call(document.querySelectorAll("#keypad button, #say-form button, #say-form input"), function (b) { b.disabled = ended; });
    $("caller-hangup").disabled = ended;
    $("voicemail-box").hidden = !(leg.waiting && leg.waiting.kind === "record");
    renderLog($("caller-log"), leg);
    holdMusic(leg.waiting && leg.waiting.kind === "conversation" && !leg.waiting.connected ? leg.waiting.music_url : null);
  }

  function agentCard(leg) {
    var card = document.querySelector('.agent-card[data-uuid="' + leg.uuid + '"]');
    if (card) { return card; }
    var empty = $("agents-empty");
    if (empty) { empty.remove(); }
    card = document.createElement("section");
    card.className = "phone agent-card";
    card.setAttribute("data-uuid", leg.uuid);
    card.setAttribute("data-name", leg.name);
    card.setAttribute("aria-label", leg.name + "'s phone");
    card.innerHTML =
      '<div class="head"><div><h2></h2><div class="number"></div></div><span class="state"></span></div>' +
      '<div class="screen" aria-live="polite"><div class="prompt"></div><div class="announcement" hidden></div>' +
      '<div class="waiting"></div></div>' +
      '<div class="actions">' +
      '<button type="button" class="ok" data-action="accept">Accept (1)</button>' +
      '<button type="button" class="danger" data-action="decline">Decline (2)</button>' +
      '<button type="button" data-action="hangup">Hang up</button></div>' +
      '<div class="actions small ringing-only">' +
      '<button type="button" data-action="answer">Answer and listen</button>' +
      '<button type="button" data-action="busy">Busy</button>' +
      '<button type="button" data-action="no_answer">No answer</button>' +
      '<button type="button" data-action="machine">Mailbox picks up</button></div>' +
      '<ul class="log"></ul>';
    card.querySelector("h2").textContent = leg.name;
    card.querySelector(".number").textContent = phoneNumber(leg.to);
    card.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-action]");
      if (button && !button.disabled) {
        button.disabled = true;
        legAction(leg.uuid, button.getAttribute("data-action"));
      }
    });
    $("agents").appendChild(card);
    return card;
  }

  function renderAgent(leg) {
    var card = agentCard(leg);
    card.className = "phone agent-card " + leg.state;
    card.setAttribute("data-state", leg.state);
    setState(card.querySelector(".state"), leg);
    card.querySelector(".prompt").textContent = lastPrompt(leg);
    card.querySelector(".waiting").textContent = waitingText(leg);
    renderAnnouncement(card.querySelector(".announcement"), leg, "agent");
    card.setAttribute("data-announcing", leg.waiting && leg.waiting.kind === "talk" ? "true" : "false");
    var ringing = leg.state === "ringing";
    var live = leg.state !== "ended";
    var deciding = ringing || leg.state === "answered";
    card.querySelector('[data-action="accept"]').disabled = !deciding;
    card.querySelector('[data-action="decline"]').disabled = !deciding;
    card.querySelector('[data-action="hangup"]').disabled = !live || ringing;
    card.querySelector(".ringing-only").hidden = !ringing;
    renderLog(card.querySelector(".log"), leg);
  }

  function renderCallLog(log) {
    var list = $("call-log");
    if (!log) { return; }
    var rows = [["State", log.state_label + (log.outcome_label ? " — " + log.outcome_label : "")]];
    if (log.option) { rows.push(["Option", log.option]); }
    if (log.voicemail) { rows.push(["Voicemail", log.voicemail.transcript || "(no transcript yet)"]); }
    list.innerHTML = "";
    rows.forEach(function (row) {
      var dt = document.createElement("dt"); dt.textContent = row[0];
      var dd = document.createElement("dd"); dd.textContent = row[1];
      if (row[0] === "State") { dd.id = "call-state"; }
      list.appendChild(dt); list.appendChild(dd);
    });
    if (log.url) { $("call-link").href = log.url; $("call-link").hidden = false; }
    var table = $("call-legs");
    table.hidden = !log.legs.length;
    var body = table.querySelector("tbody");
    body.innerHTML = "";
    log.legs.forEach(function (leg) {
      var tr = document.createElement("tr");
      [leg.name + " (" + leg.phone + ")", leg.status_label, leg.detail].forEach(function (text) {
        var td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function renderIncident(incident) {
    if (!incident) { return; }
    $("incident-title").textContent = "#" + incident.id + " " + incident.summary;
    var status = $("incident-status");
    status.hidden = false;
    status.textContent = incident.status_label;
    status.className = "badge " + incident.status;
    status.setAttribute("data-status", incident.status);
    if (incident.url) { $("incident-link").href = incident.url; $("incident-link").hidden = false; }
    var list = $("timeline");
    if (list.getAttribute("data-count") === String(incident.timeline.length)) { return; }
    list.setAttribute("data-count", String(incident.timeline.length));
    list.innerHTML = "";
    incident.timeline.forEach(function (event) {
      var item = document.createElement("li");
      var time = document.createElement("time"); time.textContent = event.time;
      item.appendChild(time);
      item.appendChild(document.createTextNode(event.kind_label + ": " + event.message));
      list.appendChild(item);
    });
  }

  function render(data) {
    var caller = null;
    data.legs.forEach(function (leg) {
      speakNew(leg);
      if (leg.role === "caller") { caller = leg; renderCaller(leg); } else { renderAgent(leg); }
    });
    quiet = false;
    renderCallLog(data.call_log);
    renderIncident(data.incident);
    if (caller && caller.state === "ended" && !endedAt) {
      endedAt = Date.now();
      if ("speechSynthesis" in window) { window.speechSynthesis.cancel(); }
      holdMusic(null);
      $("call-button").disabled = false;
      loadLiveCalls();
    }
  }

  function poll() {
    if (!callUuid) { return; }
    clearTimeout(pollTimer);
    var uuid = callUuid;
    return fetch(cfg.stateUrl + "?call=" + encodeURIComponent(uuid), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(new Error("HTTP " + response.status)); })
      .then(function (data) { if (uuid === callUuid) { render(data); } })
      .catch(function (error) { showError("Updating failed: " + error.message); })
      .then(function () {
        if (uuid !== callUuid) { return; }
        if (endedAt && Date.now() - endedAt > AFTER_END_SECONDS * 1000) { return; }
        pollTimer = setTimeout(poll, endedAt ? AFTER_END_POLL_MS : POLL_MS);
      });
  }

  // --- the account's calls in progress ---------------------------------------------------------------------------

  function liveCallRow(call) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-call", call.call);
    [call.placed_at, call.number, call.placed_by, (STATE_LABELS[call.state] || call.state) +
      (call.agents ? " · " + call.agents + (call.agents === 1 ? " agent" : " agents") + " up" : "")
    ].forEach(function (text) {
      var td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
    });
    var actions = document.createElement("td");
    actions.className = "tc-live-actions";
    var resume = document.createElement("button");
    resume.type = "button";
    resume.setAttribute("data-live", "resume");
    resume.textContent = call.call === callUuid ? "On this page" : "Resume";
    resume.disabled = call.call === callUuid;
    var hangup = document.createElement("button");
    hangup.type = "button";
    hangup.className = "danger";
    hangup.setAttribute("data-live", "hangup");
    hangup.textContent = "Hang up";
    actions.appendChild(resume);
    actions.appendChild(hangup);
    tr.appendChild(actions);
    return tr;
  }

  function loadLiveCalls() {
    clearTimeout(liveTimer);
    return fetch(cfg.callsUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(new Error("HTTP " + response.status)); })
      .then(function (data) {
        var body = $("live-calls-body");
        body.innerHTML = "";
        data.calls.forEach(function (call) { body.appendChild(liveCallRow(call)); });
        $("live-calls").hidden = !data.calls.length;
      })
      .catch(function () { /* the list is a convenience: the next round tries again */ })
      .then(function () { liveTimer = setTimeout(loadLiveCalls, LIVE_POLL_MS); });
  }

  function watch(uuid, resumed) {
    if ("speechSynthesis" in window) { window.speechSynthesis.cancel(); }
    holdMusic(null);
    callUuid = uuid;
    $("phones").setAttribute("data-call", uuid);
    $("call-button").disabled = true;
    resetPage();
    quiet = Boolean(resumed);
    poll();
    loadLiveCalls();
  }

  $("live-calls").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-live]");
    if (!button || button.disabled) { return; }
    var uuid = button.closest("tr").getAttribute("data-call");
    button.disabled = true;
    if (button.getAttribute("data-live") === "resume") { watch(uuid, true); return; }
    post(cfg.hangupUrl.replace("UUID", uuid), {}).then(function () {
      if (uuid === callUuid) { poll(); }
      loadLiveCalls();
    }, function () { button.disabled = false; });
  });

  function resetPage() {
    endedAt = null;
    spoken = {};
    $("agents").innerHTML = '<p class="muted tc-agents-empty" id="agents-empty">Agents\u2019 phones appear here when the call is routed to them.</p>';
    $("caller-log").innerHTML = "";
    $("timeline").innerHTML = '<li class="muted">The incident is created when the call is routed.</li>';
    $("timeline").removeAttribute("data-count");
    $("incident-status").hidden = true;
    $("incident-title").textContent = "";
    $("incident-link").hidden = true;
    $("call-link").hidden = true;
    $("call-legs").hidden = true;
    $("call-log").innerHTML = '<dt>State</dt><dd class="muted" id="call-state">waiting for the answer webhook…</dd>';
    $("phones").hidden = false;
    $("records").hidden = false;
  }

  // --- wiring ------------------------------------------------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if ("speechSynthesis" in window) { window.speechSynthesis.cancel(); }
    $("call-button").disabled = true;
    post(this.action, { number: $("number").value, flow: $("flow").value }).then(function (data) {
      // A call to the draft comes from a caller id of its own (see callrouting/flows/draft_calls.py).
      if (data.caller) { $("caller-from").textContent = data.caller; }
      watch(data.call);
    }, function () { $("call-button").disabled = false; });
  });

  $("keypad").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-key]");
    if (button && callUuid) { legAction(callUuid, "dtmf", { digits: button.getAttribute("data-key") }); }
  });

  document.addEventListener("keydown", function (event) {
    if (!callUuid || endedAt || event.target.tagName === "INPUT" || event.target.tagName === "TEXTAREA") { return; }
    if ("0123456789*#".indexOf(event.key) >= 0 && event.key.length === 1) { legAction(callUuid, "dtmf", { digits: event.key }); }
  });

  $("say-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = $("say-text").value.trim();
    if (text && callUuid) { legAction(callUuid, "say", { text: text }).then(function () { $("say-text").value = ""; }); }
  });

  $("caller-hangup").addEventListener("click", function () { if (callUuid) { legAction(callUuid, "hangup"); } });

  $("voicemail-send").addEventListener("click", function () {
    legAction(callUuid, "voicemail", { text: $("voicemail-text").value.trim() });
  });

  $("mic-button").addEventListener("click", function () {
    var button = this;
    if (recorder && recorder.state === "recording") { recorder.stop(); return; }
    if (!navigator.mediaDevices || !window.MediaRecorder) { $("mic-status").textContent = "No microphone recording in this browser."; return; }
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      var chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = function (e) { if (e.data.size) { chunks.push(e.data); } };
      recorder.onstop = function () {
        stream.getTracks().forEach(function (track) { track.stop(); });
        button.textContent = "● Record with microphone";
        $("mic-status").textContent = "Sending…";
        var blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
        legAction(callUuid, "voicemail", { text: $("voicemail-text").value.trim() }, blob)
          .then(function () { $("mic-status").textContent = ""; });
      };
      recorder.start();
      button.textContent = "■ Stop and send";
      $("mic-status").innerHTML = '<span class="recording-dot">●</span> recording…';
      setTimeout(function () { if (recorder && recorder.state === "recording") { recorder.stop(); } }, 30000);
    }, function () { $("mic-status").textContent = "The microphone is not available."; });
  });
  loadLiveCalls();
})();
