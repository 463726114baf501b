"""Linking a number to the Vonage application (Telephony.link_number, Numbers API `update_number`): the real SDK
against the local fake API (tests/fake_vonage.py), which checks the API key/secret like Vonage.

Personas: sam is support staff and links Acme's numbers from the admin.
"""
import base64
import logging

import pytest

from callrouting.models import RoutingNumber
from incidents.telephony import NotConfigured, TelephonyError, get_telephony

NUMBER = "+4930901832"
PROVISION = "/admin/callrouting/routingnumber/provision/"


def test_link_number_updates_the_number_with_the_application_id(vonage_api, caplog):
    caplog.set_level(logging.DEBUG)
    get_telephony().link_number(NUMBER)

    (request,) = vonage_api.requests
    assert (request.method, request.path) == ("POST", "/number/update")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    credentials = vonage_api.credentials
    expected = base64.b64encode(f"{credentials.api_key}:{credentials.api_secret}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}" and request.auth_error is None
    assert request.form == {"country": "DE", "msisdn": "4930901832", "app_id": credentials.application_id}
    assert request.status == 200
    assert vonage_api.numbers_updated() == [request.form]
    assert f"vonage action=link_number number=***{NUMBER[-4:]} country=DE" in caplog.text  # masked in logs
    # The SDK's DEBUG lines carry the request headers: the Basic credentials must not reach the logs.
    assert expected not in caplog.text and credentials.api_secret not in caplog.text


def test_link_number_country_of_other_numbers(vonage_api):
    get_telephony().link_number("+14155550100")
    get_telephony().link_number("+447700900123")  # a range phonenumbers calls invalid: the main country of +44

    assert [(fields["country"], fields["msisdn"]) for fields in vonage_api.numbers_updated()] == [
        ("US", "14155550100"),
        ("GB", "447700900123"),
    ]


def test_link_number_after_a_voice_request_and_an_sms_keeps_each_request_clean(vonage_api):
    # The SDK shares one header dict per client: Basic auth and JSON content types must not leak between APIs.
    get_telephony().create_call(to=NUMBER, from_="+4930123456789", event_url="https://x.test/e", answer_url="https://x.test/a")
    get_telephony().link_number(NUMBER)
    get_telephony().send_sms(to=NUMBER, from_="Acme", text="hello")

    update = vonage_api.requests_matching("POST", "^/number/update$")[0]
    sms = vonage_api.requests_matching("POST", "^/sms/json$")[0]
    assert update.headers["content-type"] == "application/x-www-form-urlencoded" and update.status == 200
    assert sms.headers["content-type"] == "application/x-www-form-urlencoded" and sms.status == 200


@pytest.mark.parametrize("status, permanent", [(401, True), (403, True), (420, True), (429, False), (500, False), (503, False)])
def test_link_number_http_errors(vonage_api, status, permanent):
    # The Numbers API's answers carry the status in the body too (420: "method failed", e.g. a bad parameter).
    body = {"error-code": str(status), "error-code-label": "scripted"}
    vonage_api.fail_next("POST", "^/number/update$", status, body=body)
    with pytest.raises(TelephonyError) as caught:
        get_telephony().link_number(NUMBER)
    assert (caught.value.status, caught.value.permanent) == (status, permanent)
    assert "link_number" in str(caught.value) and vonage_api.numbers_updated() == []


def test_link_number_with_wrong_credentials_is_a_permanent_error(vonage_api, settings):
    settings.VONAGE_API_SECRET = "wrong"
    with pytest.raises(TelephonyError) as caught:
        get_telephony().link_number(NUMBER)
    assert (caught.value.status, caught.value.permanent) == (401, True)
    assert "wrong" not in str(caught.value) and vonage_api.numbers_updated() == []


@pytest.mark.parametrize("code, permanent", [("420", True), ("500", False)])
def test_link_number_error_code_in_a_2xx_answer(vonage_api, code, permanent):
    vonage_api.fail_next("POST", "^/number/update$", 200, body={"error-code": code, "error-code-label": "scripted"})
    with pytest.raises(TelephonyError) as caught:
        get_telephony().link_number(NUMBER)
    assert caught.value.permanent is permanent and f"{code} scripted" in str(caught.value)


@pytest.mark.parametrize("body", [{}, b""])
def test_link_number_answer_without_error_code(vonage_api, body):
    vonage_api.fail_next("POST", "^/number/update$", 200, body=body)
    with pytest.raises(TelephonyError) as caught:
        get_telephony().link_number(NUMBER)
    assert caught.value.permanent and "unexpected answer" in str(caught.value)


def test_link_number_not_configured_without_api_key(vonage_api, settings):
    settings.VONAGE_API_KEY = settings.VONAGE_API_SECRET = ""
    with pytest.raises(NotConfigured) as caught:
        get_telephony().link_number(NUMBER)
    assert caught.value.permanent and "VONAGE_API_KEY" in str(caught.value)
    assert vonage_api.requests == []


def test_link_number_not_configured_without_application_id(vonage_api, settings):
    settings.VONAGE_APPLICATION_ID = ""
    with pytest.raises(NotConfigured) as caught:
        get_telephony().link_number(NUMBER)
    assert "VONAGE_APPLICATION_ID" in str(caught.value) and vonage_api.requests == []


@pytest.mark.parametrize("number", ["", "030 901832", "+0123", None])
def test_link_number_refuses_what_is_not_e164(vonage_api, number):
    with pytest.raises(TelephonyError) as caught:
        get_telephony().link_number(number)
    assert caught.value.permanent and vonage_api.requests == []


def test_link_number_refuses_a_non_geographic_number(vonage_api):
    with pytest.raises(TelephonyError) as caught:
        get_telephony().link_number("+80012345678")
    assert caught.value.permanent and "no country" in str(caught.value) and vonage_api.requests == []


# --- through the admin, no monkeypatch -------------------------------------------------------------------------


def test_provisioning_with_link_reaches_the_vonage_api(client, sam, acme, vonage_api):
    client.force_login(sam)
    response = client.post(PROVISION, {"account": acme.pk, "phone_number": "+49 30 901 8299", "name": "Acme sales",
                                       "language": "en-US", "link_to_vonage": "on"}, follow=True)

    assert "Linked to the Vonage application." in response.content.decode()
    assert vonage_api.numbers_updated() == [
        {"country": "DE", "msisdn": "49309018299", "app_id": vonage_api.credentials.application_id}
    ]


def test_link_action_reports_what_vonage_refused(client, sam, acme, vonage_api):
    client.force_login(sam)
    client.post(PROVISION, {"account": acme.pk, "phone_number": NUMBER, "name": "A", "language": "en-US"})
    number = RoutingNumber.objects.get(phone_number=NUMBER)
    assert vonage_api.numbers_updated() == []  # not linked unless asked

    vonage_api.fail_next("POST", "^/number/update$", 401)
    refused = client.post("/admin/callrouting/routingnumber/", {"action": "link_to_vonage", "_selected_action": [number.pk]},
                          follow=True)
    assert "not linked: Vonage link_number failed with HTTP 401" in refused.content.decode()

    linked = client.post("/admin/callrouting/routingnumber/", {"action": "link_to_vonage", "_selected_action": [number.pk]},
                         follow=True)
    assert "Linked 1 number to the Vonage application." in linked.content.decode()
    assert [fields["msisdn"] for fields in vonage_api.numbers_updated()] == ["4930901832"]
