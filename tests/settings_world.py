"""One account's complete configuration for the settings-page and API tests: every kind of row the pages and
endpoints show, so the isolation tests can fill every URL id with a row of that account.

`world(account, admin, responder)` returns a SimpleNamespace with the rows, and `.ids`, {URL kwarg: pk} as
callrouting/web/urls.py names them (number_pk, option_pk, ...).
"""
import datetime as dt
import io
import math
import wave
from types import SimpleNamespace

from django.core.files.base import ContentFile
from django.utils import timezone

from callrouting import advanced, audio, configuration
from callrouting.models import AgentLeg, Call, Holiday, NumberAudio, SupportHoursRange, Voicemail
from escalation.models import LayerRestriction, ScheduleOverride
from incidents.models import IncidentEvent
from tests.callrouting_factories import RoutingNumberFactory, RoutingOptionFactory
from tests.factories import LayerFactory, PolicyFactory, RuleFactory, ScheduleFactory
from tests.incidents_factories import AlertActionFactory, IncidentFactory


def wav_bytes(seconds=0.5, rate=8000):
    """A small real WAV (mono 16-bit, a 440 Hz tone) written with the standard library's wave module."""
    frames = b"".join(
        int(0.3 * 32767 * math.sin(2 * math.pi * 440 * i / rate)).to_bytes(2, "little", signed=True)
        for i in range(int(rate * seconds))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return out.getvalue()


def world(account, admin, responder, *, phone_number=None):
    schedule = ScheduleFactory(account=account, name=f"{account.name} primary", timezone="Europe/Berlin")
    layer = LayerFactory(schedule=schedule, level=1, shift_unit="days", users=[admin, responder])
    restriction = LayerRestriction.objects.create(layer=layer, weekday=None, start_time=dt.time(0), end_time=dt.time(23, 0))
    now = timezone.now()
    override = ScheduleOverride.objects.create(
        schedule=schedule, user=responder, start=now + dt.timedelta(days=2), end=now + dt.timedelta(days=3)
    )
    policy = PolicyFactory(account=account, name=f"{account.name} on call")
    rule = RuleFactory(policy=policy, position=0, users=[admin], schedules=[schedule])
    number = RoutingNumberFactory(
        account=account, name=f"{account.name} support", greeting=f"Welcome to {account.name}.", **({"phone_number": phone_number} if phone_number else {})
    )
    option = RoutingOptionFactory(routing_number=number, digit=1, position=0, label="Outage", escalation_policy=policy)
    second = RoutingOptionFactory(routing_number=number, digit=2, position=1, label="Billing", escalation_policy=policy)
    action = AlertActionFactory(alert_source=number.alert_source, name=f"{account.name} hook")
    incident = IncidentFactory(alert_source=number.alert_source, summary=f"Call for {account.name}")
    IncidentEvent.objects.create(incident=incident, kind=IncidentEvent.Kind.CREATED, message="Incident created.")
    call = Call.objects.create(
        account=account, routing_number=number, vonage_uuid=f"uuid-{account.slug}", caller="+4917612345678",
        called_number=number.phone_number, option=option, incident=incident, state=Call.State.ENDED,
        outcome=Call.Outcome.VOICEMAIL,
    )
    leg = AgentLeg.objects.create(call=call, position=0, user=admin, phone_number="+4915110000001", status="no_answer")
    voicemail = Voicemail.objects.create(call=call, incident=incident, transcript="Please call me back.", duration=7)
    voicemail.recording.save("vm.mp3", ContentFile(b"ID3 fake mp3 " + account.slug.encode()), save=True)
    support_range = SupportHoursRange.objects.create(calendar=number.own_calendar(), weekday=0, start=dt.time(9), end=dt.time(17))
    holiday = Holiday.objects.create(calendar=number.own_calendar(), date=dt.date(2030, 12, 25), name="Christmas Day")
    # A mailbox greeting: stored like an upload, without changing what the number's callers hear first.
    upload = io.BytesIO(wav_bytes())
    upload.name = "mailbox.wav"
    number_audio = advanced.store_audio(number, NumberAudio.Kind.MAILBOX_GREETING, audio.prepare(upload, "mailbox_greeting"))
    contact_method = admin.contact_methods.first()
    api_token, _ = configuration.create_api_token(admin, f"{account.name} deploy script")
    notification_rule = admin.notification_rules.first()
    # The People pages name a person and one of their contact methods and rules: the responder's own.
    responder_method = responder.contact_methods.first()
    responder_rule = responder.notification_rules.first()
    rows = SimpleNamespace(
        schedule=schedule, layer=layer, restriction=restriction, override=override, policy=policy, rule=rule,
        number=number, option=option, second_option=second, action=action, alert_source=number.alert_source,
        incident=incident, call=call, leg=leg, voicemail=voicemail, contact_method=contact_method, admin=admin,
        notification_rule=notification_rule,
        responder=responder, support_range=support_range, holiday=holiday, number_audio=number_audio,
        api_token=api_token, calendar=number.support_calendar, flow=number.flow, flow_version=number.flow.published,
    )
    rows.ids = {
        "number_pk": number.pk,
        "option_pk": option.pk,
        "action_pk": action.pk,
        "policy_pk": policy.pk,
        "rule_pk": rule.pk,
        "schedule_pk": schedule.pk,
        "layer_pk": layer.pk,
        "override_pk": override.pk,
        "incident_pk": incident.pk,
        "call_pk": call.pk,
        "token_pk": api_token.pk,
        "user_pk": responder.pk,
        "contact_method_pk": responder_method.pk,
        "notification_rule_pk": responder_rule.pk,
    }
    return rows
