"""manage.py simulate_call: place a scripted call through the local phone network and print its transcript.

    manage.py simulate_call --to +4930901820 --press 1 --agent +4915112345671=decline --default-agent accept:2

The phone network is found through --url/--token, else EMULATOR_URL/EMULATOR_TOKEN, else the running.json that
`manage.py run_local` writes under .local/phone-network/.
"""
import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from callrouting.emulator.script import DEFAULT_CALLER_ID, Agent, Caller, EmulatorClient, EmulatorError, ScriptedCall
from callrouting.emulator.server import LocalSetup


class Command(BaseCommand):
    help = "Place a scripted call (caller and agents) through the local phone network and print what happened."

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, help="the routing number to call")
        parser.add_argument("--from", dest="from_", default=DEFAULT_CALLER_ID, help="the caller's number")
        parser.add_argument("--press", help="keys the caller presses at the menu")
        parser.add_argument("--say", help="words the caller says at the menu")
        parser.add_argument("--after", type=float, default=0.5, help="seconds into the menu before pressing/saying")
        parser.add_argument("--hang-up-after", type=float, default=2.0,
                            help="the caller hangs up this many seconds after being connected")
        parser.add_argument("--hang-up-on-hold", type=float, help="the caller hangs up this many seconds into the hold")
        parser.add_argument("--voicemail", help="what the caller says at the voicemail beep")
        parser.add_argument("--agent", action="append", default=[], metavar="NUMBER=BEHAVIOUR",
                            help="an agent's behaviour: accept[:SECONDS], decline, reject, busy, no-answer, unavailable, "
                                 "machine, silent, fail (repeatable)")
        parser.add_argument("--nth-agent", action="append", default=[], metavar="BEHAVIOUR",
                            help="behaviour of the n-th agent called (repeatable, in order)")
        parser.add_argument("--default-agent", default="accept:1", help="behaviour of every other agent")
        parser.add_argument("--timeout", type=float, default=120)
        parser.add_argument("--url", help="the phone network's base URL (https://127.0.0.1:PORT)")
        parser.add_argument("--token", help="the control token")
        parser.add_argument("--ca", help="the phone network's CA certificate")
        parser.add_argument("--json", action="store_true", help="print the legs as JSON instead of a transcript")

    def handle(self, *args, **options):
        client = self._client(options)
        try:
            agents = {}
            for item in options["agent"]:
                number, sep, behaviour = item.partition("=")
                if not sep:
                    raise CommandError(f"--agent {item!r}: use NUMBER=BEHAVIOUR")
                agents[number.strip()] = Agent.parse(behaviour)
            sequence = [Agent.parse(item) for item in options["nth_agent"]]
            default = Agent.parse(options["default_agent"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        call = ScriptedCall(
            to=options["to"],
            from_=options["from_"],
            caller=Caller(
                press=options["press"],
                say=options["say"],
                after=options["after"],
                hang_up_after=options["hang_up_after"],
                hang_up_on_hold=options["hang_up_on_hold"],
                voicemail=options["voicemail"],
            ),
            agents=agents,
            agent_sequence=sequence,
            default_agent=default,
        )
        try:
            outcome = call.run(client, timeout=options["timeout"])
        except (EmulatorError, TimeoutError) as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps({"caller": outcome.caller, "agents": outcome.agents}, indent=2))
            return
        self.stdout.write(outcome.transcript())
        connected = f"connected after {outcome.connected_after:.1f} s" if outcome.connected else "not connected"
        self.stdout.write(self.style.SUCCESS(f"Call {outcome.caller['uuid']}: {connected}, {outcome.duration:.1f} s in all."))

    def _client(self, options):
        url = options["url"] or os.environ.get("EMULATOR_URL")
        token = options["token"] or os.environ.get("EMULATOR_TOKEN")
        ca = options["ca"] or os.environ.get("EMULATOR_CA")
        state = Path(settings.BASE_DIR) / ".local" / "phone-network"
        if not url and (state / "running.json").exists():
            running = json.loads((state / "running.json").read_text())
            url, ca = running["url"], ca or running["ca"]
        if not token and (state / "settings.json").exists():
            token = LocalSetup.load_or_create(state).control_token
        if not url or not token:
            raise CommandError("No phone network found: start `make run` (no Vonage credentials) or pass --url and --token.")
        return EmulatorClient(url, token, verify=ca or True)
