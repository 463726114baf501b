"""manage.py phone_network: run the local phone network (the Vonage emulator) until Ctrl-C.

It serves the Vonage REST API and the control API on one HTTPS port and sends the product's webhooks, signed
with the signature secret. `manage.py run_local` starts it by itself when no Vonage credentials are set.
"""
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from callrouting.emulator.rest import Credentials
from callrouting.emulator.server import LocalSetup, PhoneNetwork


class Command(BaseCommand):
    help = "Run the local phone network: a Vonage emulator for calls without a Vonage account."

    def add_arguments(self, parser):
        parser.add_argument("--state-dir", default=".local/phone-network",
                            help="where the generated credentials and CA live (created on first use)")
        parser.add_argument("--addr", default="127.0.0.1:8001", help="host:port to serve HTTPS on")
        parser.add_argument("--webhook-base", default="http://127.0.0.1:8000",
                            help="the product's base URL (answer URL = <base>/vonage/answer, event, fallback)")
        parser.add_argument("--speed", type=float, default=1.0,
                            help="simulated time factor: 1 real time, 0 as fast as possible (tests)")
        parser.add_argument("--call-rate", type=int, default=3,
                            help="call creations per second before HTTP 429, like Vonage (0: unlimited)")
        parser.add_argument("--fallback-method", choices=["GET", "POST"], default="GET",
                            help="how the fallback URL is called (a Vonage application's default: GET)")
        parser.add_argument("--second-region", action="store_true",
                            help="serve a second data centre on the next free port (see the README)")

    def handle(self, *args, state_dir, addr, webhook_base, speed, call_rate, fallback_method, second_region,
               **options):
        host, _, port = addr.rpartition(":")
        if not host or not port.isdigit():
            raise CommandError("--addr must be host:port")
        if speed < 0:
            raise CommandError("--speed must be >= 0")
        setup = LocalSetup.load_or_create(state_dir)
        credentials = setup.credentials()
        network = PhoneNetwork(
            webhook_base=webhook_base,
            credentials=Credentials(credentials.application_id, "", credentials.public_key_pem,
                                    credentials.api_key, credentials.api_secret),
            signature_secret=setup.signature_secret,
            control_token=setup.control_token,
            speed=speed,
            ca=setup.ca(),
            host=host,
            port=int(port),
            call_rate=call_rate or None,
            fallback_method=fallback_method,
            second_region=second_region,
        )
        stop = threading.Event()
        previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
        network.start()
        self.stdout.write(self.style.SUCCESS(
            f"Local phone network on {network.base_url} (webhooks to {webhook_base}, speed {speed:g}). Ctrl-C stops it."))
        if network.second_base_url:
            self.stdout.write(f"Second region on {network.second_base_url}.")
        self.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            network.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write("Phone network stopped.")
