"""The escalation admin: sam (support staff) works on every account's data; account users get none of it.

Rows that need each other (a layer and its participants, a rule and whom it notifies) are validated where they
are edited together and come back as form errors, never as a 500.
"""
import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from escalation.demo import load_demo_escalation
from escalation.models import EscalationRule, LayerMember, RotationLayer, ScheduleOverride
from tests.factories import PolicyFactory, ScheduleFactory


@pytest.fixture
def demo(acme):
    return load_demo_escalation(acme)


@pytest.fixture
def staff_client(client, sam):
    client.force_login(sam)
    return client


def management(prefix, total, initial=0):
    return {
        f"{prefix}-TOTAL_FORMS": total,
        f"{prefix}-INITIAL_FORMS": initial,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }


def errors_of(response):
    """Every error message on an admin change form page, form and inlines."""
    adminform = response.context["adminform"].form
    messages = [str(m) for errors in adminform.errors.values() for m in errors]
    for inline in response.context["inline_admin_formsets"]:
        messages += [str(m) for m in inline.formset.non_form_errors()]
        messages += [str(m) for form_errors in inline.formset.errors for errors in form_errors.values() for m in errors]
    return messages


MODELS = ["account", "user", "oncallschedule", "rotationlayer", "escalationpolicy", "escalationrule"]


@pytest.mark.parametrize("model", MODELS)
def test_changelists_and_add_pages_render_for_support_staff(staff_client, demo, model):
    assert staff_client.get(reverse(f"admin:escalation_{model}_changelist")).status_code == 200
    assert staff_client.get(reverse(f"admin:escalation_{model}_add")).status_code == 200


def test_change_pages_of_the_demo_render_for_support_staff(staff_client, demo, acme):
    objects = [acme, *demo["responders"].values(), *demo["schedules"].values(), *demo["policies"].values()]
    objects += list(RotationLayer.objects.filter(schedule__account=acme))
    objects += list(EscalationRule.objects.filter(policy__account=acme))
    for obj in objects:
        url = reverse(f"admin:escalation_{obj._meta.model_name}_change", args=[obj.pk])
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert str(obj) in response.text


def test_schedule_list_and_page_show_who_is_on_call(staff_client, demo):
    primary = demo["schedules"]["Primary on-call"]
    on_call = primary.on_call_at(timezone.now())

    listing = staff_client.get(reverse("admin:escalation_oncallschedule_changelist"))
    page = staff_client.get(reverse("admin:escalation_oncallschedule_change", args=[primary.pk]))

    assert "Primary on-call" in listing.text and "Secondary / business hours" in listing.text
    assert str(on_call) in listing.text and str(on_call) in page.text
    assert "Next 14 days" in page.text
    assert f"{reverse('admin:escalation_rotationlayer_add')}?schedule={primary.pk}" in page.text


def test_policy_list_shows_the_users_call_routing_dials_now(staff_client, demo):
    critical = demo["policies"]["Critical infrastructure"]
    dialled = ", ".join(str(user) for user in critical.users_at(timezone.now()))

    response = staff_client.get(reverse("admin:escalation_escalationpolicy_changelist"))

    assert "Critical infrastructure" in response.text and "Customer support" in response.text
    assert dialled in response.text


def test_changelists_filter_by_account_and_search(staff_client, demo, acme, globex):
    ScheduleFactory(account=globex, name="Globex nights")
    url = reverse("admin:escalation_oncallschedule_changelist")

    assert "Globex nights" not in staff_client.get(url, {"account__id__exact": acme.pk}).text
    searched = staff_client.get(url, {"q": "nights"}).text
    assert "Globex nights" in searched and "Primary on-call" not in searched


def test_login_page_renders_for_anonymous_visitors(client, db):
    response = client.get(reverse("admin:login"))

    assert response.status_code == 200 and "csrfmiddlewaretoken" in response.text


def test_account_users_get_no_admin_even_as_staff(client, charlie):
    charlie.is_staff = charlie.is_superuser = True
    charlie.save()
    client.force_login(charlie)

    assert client.get(reverse("admin:escalation_oncallschedule_changelist")).status_code == 403
    assert "escalation" not in [app["app_label"] for app in client.get(reverse("admin:index")).context["app_list"]]


def layer_post(schedule, members, restrictions=()):
    data = {
        "schedule": schedule.pk,
        "name": "Nights",
        "level": 5,
        "shift_length": 1,
        "shift_unit": "weeks",
        "start_date": "2026-01-05",
        "handoff_time": "09:00",
        "end_date": "",
        **management("members", len(members)),
        **management("restrictions", len(restrictions)),
    }
    for i, user in enumerate(members):
        data.update({f"members-{i}-position": i, f"members-{i}-user": user.pk if user else ""})
    for i, (weekday, start, end) in enumerate(restrictions):
        data.update({f"restrictions-{i}-weekday": weekday, f"restrictions-{i}-start_time": start, f"restrictions-{i}-end_time": end})
    return data


def test_layer_without_participants_is_refused(staff_client, acme):
    schedule = ScheduleFactory(account=acme)

    response = staff_client.post(reverse("admin:escalation_rotationlayer_add"), layer_post(schedule, []))

    assert response.status_code == 200
    assert "A rotation layer needs at least one participant." in errors_of(response)
    assert not RotationLayer.objects.exists()


def test_layer_with_participants_is_saved(staff_client, acme, alice, bob):
    schedule = ScheduleFactory(account=acme)

    response = staff_client.post(reverse("admin:escalation_rotationlayer_add"), layer_post(schedule, [alice, bob]))

    assert response.status_code == 302
    assert RotationLayer.objects.get(schedule=schedule).participants() == [alice, bob]


def test_removing_the_last_participant_is_refused(staff_client, acme, alice):
    schedule = ScheduleFactory(account=acme)
    staff_client.post(reverse("admin:escalation_rotationlayer_add"), layer_post(schedule, [alice]))
    layer = RotationLayer.objects.get(schedule=schedule)
    member = layer.members.get()
    data = {**layer_post(schedule, [alice]), **management("members", 1, initial=1)}
    data.update({"members-0-id": member.pk, "members-0-layer": layer.pk, "members-0-DELETE": "on"})

    response = staff_client.post(reverse("admin:escalation_rotationlayer_change", args=[layer.pk]), data)

    assert "A rotation layer needs at least one participant." in errors_of(response)
    assert LayerMember.objects.filter(layer=layer).count() == 1


def test_participant_of_another_account_is_a_field_error(staff_client, acme, charlie):
    schedule = ScheduleFactory(account=acme)

    response = staff_client.post(reverse("admin:escalation_rotationlayer_add"), layer_post(schedule, [charlie]))

    assert response.status_code == 200
    assert any("belongs to Globex" in message for message in errors_of(response))


def test_bad_restriction_is_a_field_error(staff_client, acme, alice):
    schedule = ScheduleFactory(account=acme)
    data = layer_post(schedule, [alice], restrictions=[("", "09:00", "09:00")])

    response = staff_client.post(reverse("admin:escalation_rotationlayer_add"), data)

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][1].formset
    assert "end_time" in formset.errors[0]
    assert not RotationLayer.objects.exists()


def rule_post(policy, users=(), schedules=()):
    data = {
        "policy": policy.pk,
        "position": 0,
        "escalation_timeout_minutes": 5,
        **management("rule_users", len(users)),
        **management("rule_schedules", len(schedules)),
    }
    for i, user in enumerate(users):
        data.update({f"rule_users-{i}-position": i, f"rule_users-{i}-user": user.pk})
    for i, schedule in enumerate(schedules):
        data.update({f"rule_schedules-{i}-position": i, f"rule_schedules-{i}-schedule": schedule.pk})
    return data


def test_rule_without_users_or_schedules_is_refused(staff_client, acme):
    policy = PolicyFactory(account=acme)

    response = staff_client.post(reverse("admin:escalation_escalationrule_add"), rule_post(policy))

    assert response.status_code == 200
    assert "A rule needs at least one user or one on-call schedule." in errors_of(response)
    assert not EscalationRule.objects.exists()


@pytest.mark.parametrize("with_users, with_schedules", [(True, False), (False, True)])
def test_rule_with_users_or_schedules_is_saved(staff_client, acme, alice, with_users, with_schedules):
    policy = PolicyFactory(account=acme)
    schedule = ScheduleFactory(account=acme)
    data = rule_post(policy, users=[alice] if with_users else [], schedules=[schedule] if with_schedules else [])

    response = staff_client.post(reverse("admin:escalation_escalationrule_add"), data)

    assert response.status_code == 302
    assert policy.rules.get().targets() == ([alice] if with_users else [schedule])


def schedule_post(schedule, overrides):
    data = {
        "account": schedule.account_id,
        "name": schedule.name,
        "description": "",
        "timezone": schedule.timezone,
        **management("layers", 0),
        **management("overrides", len(overrides)),
    }
    for i, (user, start, end) in enumerate(overrides):
        data.update(
            {
                f"overrides-{i}-user": user.pk,
                f"overrides-{i}-start_0": start.date().isoformat(),
                f"overrides-{i}-start_1": start.strftime("%H:%M"),
                f"overrides-{i}-end_0": end.date().isoformat(),
                f"overrides-{i}-end_1": end.strftime("%H:%M"),
            }
        )
    return data


def test_overlapping_overrides_submitted_together_are_refused(staff_client, acme, alice, bob):
    schedule = ScheduleFactory(account=acme)
    day = dt.datetime(2026, 2, 4, 8)
    data = schedule_post(schedule, [(alice, day, day + dt.timedelta(hours=4)), (bob, day + dt.timedelta(hours=2), day + dt.timedelta(hours=6))])

    response = staff_client.post(reverse("admin:escalation_oncallschedule_change", args=[schedule.pk]), data)

    assert response.status_code == 200
    assert "This override overlaps another one in this list." in errors_of(response)
    assert not ScheduleOverride.objects.exists()


def test_override_ending_before_it_starts_is_a_field_error(staff_client, acme, alice):
    schedule = ScheduleFactory(account=acme)
    day = dt.datetime(2026, 2, 4, 8)
    data = schedule_post(schedule, [(alice, day, day - dt.timedelta(hours=1))])

    response = staff_client.post(reverse("admin:escalation_oncallschedule_change", args=[schedule.pk]), data)

    assert response.status_code == 200
    assert "end" in response.context["inline_admin_formsets"][1].formset.errors[0]


def test_valid_overrides_are_saved(staff_client, acme, alice, bob):
    schedule = ScheduleFactory(account=acme)
    day = dt.datetime(2026, 2, 4, 8)
    data = schedule_post(schedule, [(alice, day, day + dt.timedelta(hours=2)), (bob, day + dt.timedelta(hours=2), day + dt.timedelta(hours=4))])

    response = staff_client.post(reverse("admin:escalation_oncallschedule_change", args=[schedule.pk]), data)

    assert response.status_code == 302
    assert [o.user for o in schedule.overrides.all()] == [alice, bob]


def user_post(**fields):
    password = "a long Passphrase 42"
    return {"username": "dora", "role": "responder", "usable_password": "true", "password1": password, "password2": password, **fields}


def test_adding_a_user_without_an_account_is_a_field_error(staff_client):
    response = staff_client.post(reverse("admin:escalation_user_add"), user_post(account=""))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["account"] == ["A user who is not support staff belongs to an account."]


def test_adding_a_user_to_an_account(staff_client, acme):
    response = staff_client.post(reverse("admin:escalation_user_add"), user_post(account=acme.pk))

    assert response.status_code == 302
    assert acme.users.get(username="dora").check_password("a long Passphrase 42")


def test_user_page_offers_only_the_users_own_contact_methods_for_notification_rules(staff_client, bob, carol):
    response = staff_client.get(reverse("admin:escalation_user_change", args=[bob.pk]))

    formset = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "notification_rules")
    assert list(formset.forms[0].fields["contact_method"].queryset) == list(bob.contact_methods.all())
    assert "+4915110000002" in response.text and "+4915110000003" not in response.text
