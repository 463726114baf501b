"""The settings pages: they render for everyone of the account, save for account admins, show field errors on
bad input (never a 500), and responders view and accept/resolve but change no settings.

Personas: alice owns Acme (edits), bob is an Acme responder (views, accepts, resolves), sam is support staff
(sent to the admin). Isolation between accounts is in test_web_isolation.py.
"""
import datetime as dt

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from callrouting.models import RoutingNumber, RoutingOption
from escalation.models import EscalationPolicy, EscalationRule, OnCallSchedule, RotationLayer, ScheduleOverride
from incidents.models import AlertAction, Incident
from tests.settings_world import world


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def acme_world(acme, alice, bob):
    return world(acme, alice, bob)


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def as_bob(client, bob):
    client.force_login(bob)
    return client


def web_patterns(resolver=None, prefix=""):
    """(route, URLPattern) for every settings page (the "web" namespace), walking the resolver tree."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace in (None, "web"):
                yield from web_patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and resolver.namespace == "web":
            yield prefix + str(entry.pattern), entry


def url_of(pattern, ids):
    return reverse(f"web:{pattern.name}", kwargs={name: ids[name] for name in pattern.pattern.converters})


# --- Every page renders ---------------------------------------------------------------------------------------


def test_every_page_renders_for_the_owner(as_alice, acme_world):
    """Generated over all settings URLs: GET answers 200 (or 405 for POST-only URLs), never an error."""
    checked = []
    for route, pattern in web_patterns():
        url = url_of(pattern, acme_world.ids)
        response = as_alice.get(url)
        assert response.status_code in (200, 302, 405), (route, response.status_code)
        checked.append(route)
    assert len(checked) >= 30


def test_every_page_renders_for_a_responder(as_bob, acme_world):
    for route, pattern in web_patterns():
        response = as_bob.get(url_of(pattern, acme_world.ids))
        if "token_pk" in pattern.pattern.converters:
            # The world's API token is alice's: another user's token is a 404 even within the account.
            assert response.status_code == 404, (route, response.status_code)
            continue
        # Pages that only change settings (new, delete) refuse responders.
        assert response.status_code in (200, 302, 403, 405), (route, response.status_code)


def test_anonymous_users_are_sent_to_log_in(client, acme_world):
    response = client.get(reverse("web:number", args=[acme_world.number.pk]))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_support_staff_are_sent_to_the_admin(client, sam):
    client.force_login(sam)
    response = client.get("/numbers/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_incident_pages_and_incident_webhooks_share_the_prefix(acme_world):
    incident = acme_world.incident.pk
    assert resolve(f"/incidents/{incident}/").view_name == "web:incident"
    assert resolve(f"/incidents/{incident}").view_name == "incidents:detail"
    assert resolve("/incidents/").view_name == "web:incidents"
    assert resolve("/incidents/voice/abc/input").view_name == "incidents:voice-input"
    assert resolve("/incidents/voice/abc/event").view_name == "incidents:voice-event"


# --- Routing number page ------------------------------------------------------------------------------------


def test_number_page_shows_preview_and_who_would_be_called(as_alice, acme_world, alice, bob):
    page = as_alice.get(reverse("web:number", args=[acme_world.number.pk])).content.decode()
    assert "Welcome to Acme. Press 1 or say Outage for Outage. Press 2 or say Billing for Billing." in page
    assert "Who would be called right now" in page
    # The card is loaded after the page (static/js/number-on-call.js); without the script its link shows it.
    on_call_url = reverse("web:number-on-call", args=[acme_world.number.pk])
    assert f'data-src="{on_call_url}?fragment=1"' in page and f'href="{on_call_url}"' in page
    # Option 1's policy: alice (rule user) first, then whoever is on call on the schedule.
    now_users = acme_world.policy.users_at(timezone.now())
    assert now_users[0] == alice
    card = as_alice.get(on_call_url, {"fragment": "1"}).content.decode()
    assert "<li>Alice</li>" in card and "Outage" in card and "<html" not in card
    own_page = as_alice.get(on_call_url).content.decode()
    assert "<li>Alice</li>" in own_page and "<html" in own_page
    assert as_alice.post(on_call_url).status_code == 405
    for section in ("general", "options", "voicemail", "actions"):
        assert f'id="{section}"' in page


def test_preview_endpoint_returns_what_callers_hear(as_alice, acme_world):
    url = reverse("web:number-preview", args=[acme_world.number.pk])
    data = as_alice.post(url, {"greeting": "Hello there.", "language": "de-DE"}).json()
    assert data["text"] == (
        "Hello there. Drücken Sie die 1 oder sagen Sie Outage für Outage. "
        "Drücken Sie die 2 oder sagen Sie Billing für Billing."
    )
    only = as_alice.post(url, {"greeting": "Hi.", "greeting_only": "on", "language": "en-US"}).json()
    assert only["text"] == "Hi."
    # The preview is the model's own function: saved settings give the same text.
    number = acme_world.number
    expected = RoutingNumber(greeting="Hi.", greeting_only=False, language="xx").greeting_text(list(number.options.all()))
    assert as_alice.post(url, {"greeting": "Hi.", "language": "bogus"}).json()["text"] == expected.replace("xx", "en-US")
    assert as_alice.get(url).status_code == 405


def general_data(number, **changes):
    data = {
        "general-name": number.name,
        "general-language": number.language,
        "general-greeting": number.greeting,
        "general-ringing_timeout": number.ringing_timeout,
    }
    data.update({f"general-{k}": v for k, v in changes.items()})
    return data


def test_owner_saves_general_settings(as_alice, acme_world):
    number = acme_world.number
    response = as_alice.post(
        reverse("web:number-general", args=[number.pk]), general_data(number, name="Acme hotline", greeting="Hello.")
    )
    assert response.status_code == 302 and response["Location"].endswith("#general")
    number.refresh_from_db()
    assert (number.name, number.greeting) == ("Acme hotline", "Hello.")
    assert number.alert_source.name == "Acme hotline"


def test_general_settings_show_field_errors(as_alice, acme_world):
    number = acme_world.number
    response = as_alice.post(
        reverse("web:number-general", args=[number.pk]), general_data(number, name="", ringing_timeout=1)
    )
    assert response.status_code == 400
    form = next(s for s in response.context["sections"] if s["section"].slug == "general")["form"]
    assert set(form.errors) == {"name", "ringing_timeout"}
    assert "Ensure this value is greater than or equal to 5." in response.content.decode()
    number.refresh_from_db()
    assert number.name == "Acme support"


def options_data(number, rows, extra=None):
    """POST data of the options formset: ROWS = [(option, {field: value})], then the new row EXTRA."""
    data = {
        "options-TOTAL_FORMS": len(rows) + 1,
        "options-INITIAL_FORMS": len(rows),
        "options-MIN_NUM_FORMS": 0,
        "options-MAX_NUM_FORMS": 1000,
    }
    for i, (option, values) in enumerate(rows):
        data.update({
            f"options-{i}-id": option.pk,
            f"options-{i}-routing_number": number.pk,
            f"options-{i}-position": option.position,
            f"options-{i}-digit": option.digit,
            f"options-{i}-label": option.label,
            f"options-{i}-escalation_policy": option.escalation_policy_id,
        })
        if option.simultaneous:
            data[f"options-{i}-simultaneous"] = "on"
        data.update({f"options-{i}-{k}": v for k, v in values.items()})
    i = len(rows)
    data[f"options-{i}-routing_number"] = number.pk
    data[f"options-{i}-position"] = len(rows)
    for key, value in (extra or {}).items():
        data[f"options-{i}-{key}"] = value
    return data


def test_owner_adds_and_edits_options(as_alice, acme_world):
    w = acme_world
    rows = [(w.option, {"label": "Outages", "simultaneous": "on"}), (w.second_option, {})]
    data = options_data(w.number, rows, {"digit": 3, "label": "Sales", "escalation_policy": w.policy.pk})
    response = as_alice.post(reverse("web:number-options", args=[w.number.pk]), data)
    assert response.status_code == 302
    options = list(w.number.options.order_by("position"))
    assert [(o.position, o.digit, o.label, o.simultaneous) for o in options] == [
        (0, 1, "Outages", True), (1, 2, "Billing", False), (2, 3, "Sales", False)
    ]


def test_option_errors_name_the_field(as_alice, acme_world, globex):
    w = acme_world
    foreign_policy = EscalationPolicy.objects.create(account=globex, name="Globex policy")
    url = reverse("web:number-options", args=[w.number.pk])
    # A digit already used by another option, a digit out of range, another account's policy.
    duplicate = as_alice.post(url, options_data(w.number, [(w.option, {}), (w.second_option, {})],
                                                {"digit": 1, "label": "Again", "escalation_policy": w.policy.pk}))
    assert duplicate.status_code == 400
    assert "digit" in duplicate.content.decode().lower() and RoutingOption.objects.filter(label="Again").count() == 0
    bad = as_alice.post(url, options_data(w.number, [(w.option, {"digit": 12}), (w.second_option, {})],
                                          {"digit": 4, "label": "X", "escalation_policy": foreign_policy.pk}))
    assert bad.status_code == 400
    formset = next(s for s in bad.context["sections"] if s["section"].slug == "options")["formset"]
    assert "digit" in formset.forms[0].errors
    assert "escalation_policy" in formset.forms[2].errors
    w.option.refresh_from_db()
    assert w.option.digit == 1


def test_owner_reorders_and_deletes_options(as_alice, acme_world):
    w = acme_world
    move = reverse("web:option-move", args=[w.number.pk, w.second_option.pk])
    assert as_alice.post(move, {"direction": "up"}).status_code == 302
    assert list(w.number.options.order_by("position").values_list("digit", flat=True)) == [2, 1]
    preview = as_alice.get(reverse("web:number", args=[w.number.pk])).context["preview"]
    assert preview.index("Billing") < preview.index("Outage")
    assert as_alice.post(move, {"direction": "sideways"}).status_code == 302
    delete = reverse("web:option-delete", args=[w.number.pk, w.option.pk])
    confirm = as_alice.get(delete)
    assert confirm.status_code == 200 and b"Yes, delete" in confirm.content
    assert RoutingOption.objects.filter(pk=w.option.pk).exists()
    assert as_alice.post(delete).status_code == 302
    assert list(w.number.options.values_list("digit", "position")) == [(2, 0)]


def test_owner_saves_voicemail_and_sees_errors(as_alice, acme_world):
    number = acme_world.number
    url = reverse("web:number-voicemail", args=[number.pk])
    ok = as_alice.post(url, {"voicemail-voicemail_enabled": "on", "voicemail-voicemail_greeting": "Leave a message.",
                             "voicemail-voicemail_max_length": 60})
    assert ok.status_code == 302
    number.refresh_from_db()
    assert (number.voicemail_enabled, number.voicemail_greeting, number.voicemail_max_length) == (True, "Leave a message.", 60)
    assert number.voicemail_transcription is False  # unchecked box
    bad = as_alice.post(url, {"voicemail-voicemail_max_length": 1})
    assert bad.status_code == 400 and "greater than or equal to 3" in bad.content.decode()


def test_owner_adds_alert_actions_with_url_check(as_alice, acme_world):
    w = acme_world
    url = reverse("web:number-actions", args=[w.number.pk])
    base = {"actions-TOTAL_FORMS": 2, "actions-INITIAL_FORMS": 1, "actions-MIN_NUM_FORMS": 0, "actions-MAX_NUM_FORMS": 1000,
            "actions-0-id": w.action.pk, "actions-0-alert_source": w.alert_source.pk, "actions-0-name": w.action.name,
            "actions-0-kind": "webhook", "actions-0-url": w.action.url, "actions-0-enabled": "on",
            "actions-0-on_created": "on", "actions-1-alert_source": w.alert_source.pk}
    bad = as_alice.post(url, {**base, "actions-1-name": "Slack", "actions-1-kind": "slack", "actions-1-url": "not a url"})
    assert bad.status_code == 400 and "Enter a valid URL." in bad.content.decode()
    ok = as_alice.post(url, {**base, "actions-1-name": "Slack", "actions-1-kind": "slack",
                             "actions-1-url": "https://hooks.slack.com/services/x", "actions-1-on_resolved": "on",
                             "actions-1-on_voicemail": "on", "actions-1-enabled": "on"})
    assert ok.status_code == 302
    slack = AlertAction.objects.get(name="Slack")
    assert slack.alert_source == w.alert_source and (slack.on_created, slack.on_resolved) == (False, True)
    assert (slack.on_escalated, slack.on_voicemail) == (False, True)
    delete = reverse("web:action-delete", args=[w.number.pk, slack.pk])
    assert as_alice.post(delete).status_code == 302 and not AlertAction.objects.filter(pk=slack.pk).exists()


def test_garbage_formset_posts_are_errors_not_500(as_alice, acme_world):
    for section in ("options", "actions"):
        response = as_alice.post(reverse(f"web:number-{section}", args=[acme_world.number.pk]), {"junk": "1"})
        assert response.status_code == 400


# --- Responders -------------------------------------------------------------------------------------------------


def test_responders_view_but_cannot_change_settings(as_bob, acme_world):
    w = acme_world
    page = as_bob.get(reverse("web:number", args=[w.number.pk]))
    assert page.status_code == 200 and b"View only" in page.content and b"Save general settings" not in page.content
    refused = [
        as_bob.post(reverse("web:number-general", args=[w.number.pk]), general_data(w.number, name="Hacked")),
        as_bob.post(reverse("web:number-voicemail", args=[w.number.pk]), {}),
        as_bob.post(reverse("web:option-move", args=[w.number.pk, w.option.pk]), {"direction": "down"}),
        as_bob.post(reverse("web:option-delete", args=[w.number.pk, w.option.pk])),
        as_bob.get(reverse("web:policy-new")),
        as_bob.post(reverse("web:policy", args=[w.policy.pk]), {"name": "Hacked"}),
        as_bob.post(reverse("web:schedule-delete", args=[w.schedule.pk])),
        as_bob.post(reverse("web:override-new", args=[w.schedule.pk]), {}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    w.number.refresh_from_db()
    assert w.number.name == "Acme support" and RoutingOption.objects.filter(pk=w.option.pk).exists()


def test_responder_accepts_and_resolves_an_incident(as_bob, acme_world, bob):
    incident = acme_world.incident
    page = as_bob.get(reverse("web:incident", args=[incident.pk])).content.decode()
    assert "Accept" in page and "Please call me back." in page and "<audio" in page
    assert as_bob.post(reverse("web:incident-accept", args=[incident.pk])).status_code == 302
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACCEPTED and incident.assigned_to == bob
    assert as_bob.post(reverse("web:incident-resolve", args=[incident.pk])).status_code == 302
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    kinds = list(incident.events.values_list("kind", flat=True))
    assert kinds[-2:] == ["accepted", "resolved"]
    # Twice is harmless: the service changes nothing and says so.
    again = as_bob.post(reverse("web:incident-resolve", args=[incident.pk]), follow=True)
    assert b"already resolved" in again.content
    assert as_bob.get(reverse("web:incident-accept", args=[incident.pk])).status_code == 405


def test_voicemail_recording_is_served_to_the_account(as_bob, acme_world):
    response = as_bob.get(reverse("web:call-voicemail", args=[acme_world.call.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "audio/mpeg"
    assert b"".join(response.streaming_content).startswith(b"ID3 fake mp3 acme")


# --- Lists and filters ------------------------------------------------------------------------------------------


def test_incident_list_filters(as_alice, acme_world):
    w = acme_world
    other = Incident.objects.create(account=w.number.account, alert_source=w.alert_source, summary="Old one",
                                    status=Incident.Status.RESOLVED)
    Incident.objects.filter(pk=other.pk).update(created_at=timezone.now() - dt.timedelta(days=10))

    def listed(**params):
        response = as_alice.get(reverse("web:incidents"), params)
        assert response.status_code == 200
        return {incident.pk for incident in response.context["page"]}

    assert listed() == {w.incident.pk, other.pk}
    assert listed(status="open") == {w.incident.pk}
    assert listed(status="resolved") == {other.pk}
    assert listed(number=w.number.pk) == {w.incident.pk, other.pk}
    today = timezone.localdate()
    assert listed(date_from=(today - dt.timedelta(days=1)).isoformat()) == {w.incident.pk}
    assert listed(date_to=(today - dt.timedelta(days=5)).isoformat()) == {other.pk}
    # Bad filter values show an error and are ignored; never a 500.
    assert listed(date_from="yesterday", number="abc", status="nope") == {w.incident.pk, other.pk}


def test_call_log_and_call_detail(as_alice, acme_world):
    w = acme_world
    page = as_alice.get(reverse("web:calls"), {"outcome": "voicemail"})
    assert [c.pk for c in page.context["page"]] == [w.call.pk]
    assert list(as_alice.get(reverse("web:calls"), {"outcome": "live"}).context["page"]) == []
    detail = as_alice.get(reverse("web:call", args=[w.call.pk])).content.decode()
    assert "No answer" in detail and "Please call me back." in detail


# --- Policies and schedules ------------------------------------------------------------------------------------


def test_owner_creates_a_policy_and_a_rule(as_alice, acme_world, alice, bob):
    w = acme_world
    duplicate = as_alice.post(reverse("web:policy-new"), {"name": w.policy.name, "repeat_count": 0})
    assert duplicate.status_code == 400 and "name" in duplicate.context["form"].errors
    created = as_alice.post(reverse("web:policy-new"), {"name": "Nights", "repeat_count": 2})
    policy = EscalationPolicy.objects.get(name="Nights")
    assert created.status_code == 302 and policy.account == w.number.account
    rule_url = reverse("web:rule-new", args=[policy.pk])
    # As a browser sends the empty rows: their position fields keep the initial 0.
    management = {"rule_users-TOTAL_FORMS": 2, "rule_users-INITIAL_FORMS": 0, "rule_schedules-TOTAL_FORMS": 1,
                  "rule_schedules-INITIAL_FORMS": 0, "rule_users-0-position": 0, "rule_users-1-position": 0,
                  "rule_schedules-0-position": 0}
    empty = as_alice.post(rule_url, {"position": 0, "escalation_timeout_minutes": 5, **management})
    assert empty.status_code == 400 and "at least one user or one on-call schedule" in empty.content.decode()
    ok = as_alice.post(rule_url, {"position": 0, "escalation_timeout_minutes": 5, **management,
                                  "rule_users-0-position": 0, "rule_users-0-user": bob.pk,
                                  "rule_users-1-position": 1, "rule_users-1-user": alice.pk,
                                  "rule_schedules-0-position": 0, "rule_schedules-0-schedule": w.schedule.pk})
    assert ok.status_code == 302
    rule = policy.rules.get()
    assert rule.escalation_timeout_minutes == 5 and [t for t in rule.targets()] == [bob, alice, w.schedule]
    page = as_alice.get(reverse("web:policy", args=[policy.pk])).content.decode()
    assert "Bob" in page and w.schedule.name in page


def test_policy_in_use_is_not_deleted(as_alice, acme_world):
    url = reverse("web:policy-delete", args=[acme_world.policy.pk])
    response = as_alice.post(url, follow=True)
    assert response.status_code == 200 and "still used" in response.content.decode()
    assert EscalationPolicy.objects.filter(pk=acme_world.policy.pk).exists()


def test_owner_deletes_a_rule_after_confirming(as_alice, acme_world):
    url = reverse("web:rule-delete", args=[acme_world.policy.pk, acme_world.rule.pk])
    assert b"Yes, delete" in as_alice.get(url).content
    as_alice.post(url)
    assert not EscalationRule.objects.filter(pk=acme_world.rule.pk).exists()


def test_owner_creates_a_schedule_with_a_layer(as_alice, acme_world, alice, bob):
    created = as_alice.post(reverse("web:schedule-new"), {"name": "Weekend", "timezone": "Europe/Berlin"})
    schedule = OnCallSchedule.objects.get(name="Weekend")
    assert created.status_code == 302
    bad_tz = as_alice.post(reverse("web:schedule-new"), {"name": "X", "timezone": "Mars/Olympus"})
    assert bad_tz.status_code == 400 and "timezone" in bad_tz.context["form"].errors
    url = reverse("web:layer-new", args=[schedule.pk])
    layer = {"name": "Main", "level": 1, "shift_length": 1, "shift_unit": "days", "start_date": "2026-01-05",
             "handoff_time": "09:00", "members-TOTAL_FORMS": 2, "members-INITIAL_FORMS": 0,
             "restrictions-TOTAL_FORMS": 1, "restrictions-INITIAL_FORMS": 0,
             "members-0-position": 0, "members-1-position": 0}
    nobody = as_alice.post(url, layer)
    assert nobody.status_code == 400 and "at least one participant" in nobody.content.decode()
    ok = as_alice.post(url, {**layer, "members-0-position": 0, "members-0-user": alice.pk,
                             "members-1-position": 1, "members-1-user": bob.pk,
                             "restrictions-0-start_time": "08:00", "restrictions-0-end_time": "20:00"})
    assert ok.status_code == 302
    saved = RotationLayer.objects.get(schedule=schedule)
    assert saved.participants() == [alice, bob] and saved.restrictions.count() == 1
    same_level = as_alice.post(url, {**layer, "members-0-position": 0, "members-0-user": alice.pk})
    assert same_level.status_code == 400 and "level" in same_level.context["form"].errors
    page = as_alice.get(reverse("web:schedule", args=[schedule.pk]))
    assert len(page.context["days"]) == 14
    assert any(bar.user in (alice, bob) for day in page.context["days"] for bar in day.bars)
    assert b"tl-bar" in page.content


def when(name, moment):
    """The override form's date and 24-hour time fields for MOMENT."""
    return {f"override-{name}_0": moment.strftime("%Y-%m-%d"), f"override-{name}_1": moment.strftime("%H:%M")}


def test_overrides_are_added_checked_and_deleted(as_alice, acme_world, alice):
    w = acme_world
    url = reverse("web:override-new", args=[w.schedule.pk])
    start = timezone.localtime(w.override.start)
    end = start + dt.timedelta(hours=2)
    overlapping = as_alice.post(url, {"override-user": alice.pk, **when("start", start), **when("end", end)})
    assert overlapping.status_code == 400 and "overlaps" in overlapping.content.decode()
    backwards = as_alice.post(url, {"override-user": alice.pk, "override-start_0": "2030-01-02",
                                    "override-start_1": "10:00", "override-end_0": "2030-01-02",
                                    "override-end_1": "09:00"})
    assert backwards.status_code == 400 and "after the start" in backwards.content.decode()
    ok = as_alice.post(url, {"override-user": alice.pk, "override-start_0": "2030-01-02", "override-start_1": "09:00",
                             "override-end_0": "2030-01-02", "override-end_1": "17:00"})
    assert ok.status_code == 302
    new = ScheduleOverride.objects.get(schedule=w.schedule, start__year=2030)
    delete = reverse("web:override-delete", args=[w.schedule.pk, new.pk])
    assert as_alice.get(delete).status_code == 200
    as_alice.post(delete)
    assert not ScheduleOverride.objects.filter(pk=new.pk).exists()


@pytest.mark.parametrize("junk", [{}, {"junk": "1", "position": "x", "name": "y" * 500, "direction": "🙃"}])
def test_bad_input_on_every_page_is_never_a_server_error(as_alice, acme_world, junk):
    """Generated over all settings URLs: any POST body is an answer (redirect, 400 with errors, 405), not a 500."""
    for route, pattern in web_patterns():
        url = url_of(pattern, acme_world.ids)
        if "delete" in route:
            continue  # a POST there is the confirmed deletion itself
        response = as_alice.post(url, junk)
        assert response.status_code < 500, (route, response.status_code)
