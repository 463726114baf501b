"""The control API of the phone network: JSON under /_emulator/, for the Test call page, scripts and tests.

Every request but /_emulator/health needs the header `X-Emulator-Token: <token>` (it controls calls).

GET  /_emulator/health                         {"ok": true}
GET  /_emulator/state?since=V&wait=S&uuids=a,b  {"version", "legs": [...]}; with SINCE, waits up to S seconds for
                                                a change (long poll)
GET  /_emulator/legs/<uuid>                     one leg (transcript, what it waits for)
POST /_emulator/calls                           {"from", "to", "steps"?, "agents"?, "agent_sequence"?,
                                                "default_agent"?, "region"?}: an inbound call; 201 with the leg
POST /_emulator/legs/<uuid>/<action>            dtmf {digits} | say {text} | answer {then_press?} | machine | reject |
                                                busy | unanswered | fail | hangup | voicemail {text, audio_base64?,
                                                content_type?} | steps {steps} | hold_talk (the leg's next
                                                barge-in talk or stream goes on until a key, words or a hangup)
PUT  /_emulator/phones/<number>                 {"steps"}: outbound calls to NUMBER ("*": any) follow them
DELETE /_emulator/phones/<number>               that phone is interactive again
GET  /_emulator/faults                          the opt-in faults now in force
POST /_emulator/faults                          {"disorder_events"?: bool, "unsigned_callbacks"?: n,
                                                "inbound_region"?: "primary"|"secondary",
                                                "late_create_calls"?: {"count": n, "seconds": s}}: status
                                                events duplicated and out of order; the next N webhooks
                                                unsigned first; where inbound calls land; the next N
                                                create-call requests place the call (its events go out) but
                                                are answered only after S seconds. Reset clears them.
POST /_emulator/reset                           hang up everything, forget all legs, phones and faults
GET  /_emulator/webhooks                        the last webhooks sent (method, url, status)
"""
import base64
import binascii
import hmac
import re

from .engine import PRIMARY, phone_pattern_ok, validate_steps
from .rest import ApiResponse

PREFIX = "/_emulator/"
LEG_ACTIONS = {"dtmf", "say", "answer", "machine", "reject", "busy", "unanswered", "fail", "hangup", "voicemail", "steps",
               "hold_talk"}
MAX_AUDIO_BYTES = 5 * 1024 * 1024
MAX_LONG_POLL = 30


class ControlAPI:
    def __init__(self, network, token, script=None):
        self.network = network
        self.token = token
        self.script = script  # the REST API's scripted faults (late_create_calls)

    def handle(self, request):
        path = request.path[len(PREFIX):].strip("/")
        if path == "health" and request.method == "GET":
            return ApiResponse.json(200, {"ok": True})
        supplied = request.headers.get("x-emulator-token", "")
        if not self.token or not hmac.compare_digest(supplied.encode(), self.token.encode()):
            return ApiResponse.error(401, "X-Emulator-Token missing or wrong")
        body = request.json if isinstance(request.json, dict) else {}
        try:
            return self._route(request, path, body)
        except ValueError as exc:
            return ApiResponse.error(400, str(exc))

    def _route(self, request, path, body):
        method = request.method
        if path == "state" and method == "GET":
            return self._state(request.query)
        if path == "calls" and method == "POST":
            return self._place_call(body)
        if path == "faults" and method in ("GET", "POST"):
            return self._faults(body if method == "POST" else {})
        if path == "reset" and method == "POST":
            self.network.reset()
            if self.script is not None:
                self.script.reset()
            return ApiResponse.json(200, {"ok": True})
        if path == "webhooks" and method == "GET":
            with self.network.lock:
                log = [{"at": at, "method": m, "url": url, "status": status} for at, m, url, status in self.network.webhook_log]
            return ApiResponse.json(200, {"webhooks": log})
        match = re.fullmatch(r"legs/([A-Za-z0-9-]+)(?:/([a-z_]+))?", path)
        if match:
            uuid, action = match.groups()
            if action is None and method == "GET":
                leg = self.network.snapshot({uuid})["legs"]
                return ApiResponse.json(200, leg[0]) if leg else ApiResponse.error(404, f"no leg {uuid}")
            if action in LEG_ACTIONS and method == "POST":
                return self._leg_action(uuid, action, body)
        match = re.fullmatch(r"phones/(\*|\+?[0-9]{3,15})", path)
        if match and method in ("PUT", "DELETE"):
            steps = validate_steps(body.get("steps", [])) if method == "PUT" else None
            self.network.set_phone(match.group(1), steps)
            return ApiResponse.json(200, {"ok": True})
        return ApiResponse.error(404, f"no control route for {method} {request.path}")

    def _faults(self, body):
        network = self.network
        disorder, unsigned, region = (body.get(name) for name in ("disorder_events", "unsigned_callbacks",
                                                                  "inbound_region"))
        if disorder is not None and not isinstance(disorder, bool):
            raise ValueError("disorder_events must be true or false")
        if unsigned is not None and (isinstance(unsigned, bool) or not isinstance(unsigned, int) or unsigned < 0):
            raise ValueError("unsigned_callbacks must be a number >= 0")
        if region is not None:
            self._check_region(region)
        late = body.get("late_create_calls")
        if late is not None:
            self._late_create_calls(late)
        with network.lock:
            if disorder is not None:
                network.disorder_events = disorder
            if unsigned is not None:
                network.unsigned_callbacks = unsigned
            if region is not None:
                network.inbound_region = region
            return ApiResponse.json(200, {"disorder_events": network.disorder_events,
                                          "unsigned_callbacks": network.unsigned_callbacks,
                                          "inbound_region": network.inbound_region})

    def _late_create_calls(self, late):
        count, seconds = (late.get(key) if isinstance(late, dict) else None for key in ("count", "seconds"))
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("late_create_calls.count must be a number >= 1")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_LONG_POLL:
            raise ValueError(f"late_create_calls.seconds must be a number of seconds up to {MAX_LONG_POLL}")
        if self.script is None:
            raise ValueError("this phone network has no REST API to delay")
        self.script.answer_late_next("POST", r"^/v1/calls$", float(seconds), times=count)

    def _check_region(self, region):
        if region not in self.network.region_urls and region != PRIMARY:
            known = ", ".join(sorted(self.network.region_urls) or [PRIMARY])
            raise ValueError(f"no region {region!r}: one of {known}")
        return region

    def _state(self, query):
        uuids = {u for u in query.get("uuids", "").split(",") if u} or None
        since = query.get("since")
        if since not in (None, ""):
            try:
                wait = min(float(query.get("wait", 20)), MAX_LONG_POLL)
                self.network.wait_for_change(int(since), wait)
            except ValueError:
                raise ValueError("since and wait must be numbers") from None
        return ApiResponse.json(200, self.network.snapshot(uuids))

    def _place_call(self, body):
        from_, to = str(body.get("from") or ""), str(body.get("to") or "")
        if not phone_pattern_ok(from_) or not phone_pattern_ok(to):
            raise ValueError("from and to must be phone numbers")
        agents = body.get("agents") or {}
        if not isinstance(agents, dict) or not all(phone_pattern_ok(number) for number in agents):
            raise ValueError("agents must map phone numbers to steps")
        sequence = body.get("agent_sequence") or []
        if not isinstance(sequence, list):
            raise ValueError("agent_sequence must be a list of step lists")
        default = body.get("default_agent")
        region = self._check_region(body["region"]) if body.get("region") is not None else None
        leg = self.network.place_inbound_call(
            from_=from_,
            to=to,
            steps=validate_steps(body.get("steps") or []),
            agents={number: validate_steps(steps) for number, steps in agents.items()},
            agent_sequence=[validate_steps(steps) for steps in sequence],
            default_agent=validate_steps(default) if default is not None else None,
            region=region,
        )
        return ApiResponse.json(201, leg)

    def _leg_action(self, uuid, action, body):
        params = {}
        if action == "dtmf":
            params["digits"] = str(body.get("digits", ""))
        elif action == "say":
            params["text"] = str(body.get("text", ""))[:500]
        elif action == "answer":
            params["then_press"] = str(body.get("then_press", ""))[:4]
        elif action == "voicemail":
            params["text"] = str(body.get("text", ""))[:2000]
            if body.get("audio_base64"):
                try:
                    audio = base64.b64decode(body["audio_base64"], validate=True)
                except (binascii.Error, ValueError):
                    raise ValueError("audio_base64 is not base64") from None
                if len(audio) > MAX_AUDIO_BYTES:
                    raise ValueError("the recording is too large")
                params["audio"] = audio
                params["content_type"] = str(body.get("content_type") or "audio/webm")[:100]
        elif action == "steps":
            params["steps"] = validate_steps(body.get("steps") or [])
        error = self.network.act(uuid, action, **params)
        if error:
            return ApiResponse.error(*error)
        leg = self.network.snapshot({uuid})["legs"]
        return ApiResponse.json(200, leg[0] if leg else {})
