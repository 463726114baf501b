"""The telephony client (incidents/telephony.py): the real Vonage SDK against the local fake API.

The fake (tests/fake_vonage.py, fixture vonage_api) checks the application JWT and the API key like Vonage.
"""
import logging
import time

import pytest
from cryptography.hazmat.primitives import serialization

from incidents.telephony import (
    NotConfigured,
    Telephony,
    TelephonyError,
    get_telephony,
    is_configured,
    reset_telephony,
)

AGENT = "+4915110000002"
FROM = "+4930123456789"
EVENT_URL = "https://callrouting.test/vonage/event/tok123"

# Fields the SDK's pydantic NCCO models would silently drop: they must reach Vonage anyway.
NCCO = [
    {"action": "talk", "text": "Incident at Acme. Press 1 to accept.", "language": "en-US", "bargeIn": True},
    {
        "action": "input",
        "type": ["dtmf", "speech"],
        "dtmf": {"maxDigits": 1, "timeOut": 5},
        "speech": {"language": "en-US", "context": ["accept", "decline"], "endOnSilence": 1},
        "mode": "asynchronous",
        "eventUrl": ["https://callrouting.test/vonage/input/tok123"],
    },
    {
        "action": "record",
        "format": "mp3",
        "endOnSilence": 3,
        "transcription": {"language": "en-US", "eventUrl": ["https://callrouting.test/vonage/transcript/tok123"]},
        "eventUrl": ["https://callrouting.test/vonage/record/tok123"],
    },
]


def place_call(**kwargs):
    arguments = {"to": AGENT, "from_": FROM, "event_url": EVENT_URL, "ncco": NCCO} | kwargs
    return get_telephony().create_call(**arguments)


# --- create_call ---------------------------------------------------------------------------------------------


def test_create_call_sends_the_ncco_exactly_and_returns_the_uuid(vonage_api):
    uuid = place_call(ringing_timer=25, length_timer=600, machine_detection="hangup")

    assert [body for body in vonage_api.calls_created()] == [
        {
            "to": [{"type": "phone", "number": "4915110000002"}],
            "from": {"type": "phone", "number": "4930123456789"},
            "event_url": [EVENT_URL],
            "ncco": NCCO,
            "ringing_timer": 25,
            "length_timer": 600,
            "machine_detection": "hangup",
        }
    ]
    assert uuid in vonage_api.api.calls


def test_create_call_authenticates_with_the_application_jwt(vonage_api):
    place_call()

    (request,) = vonage_api.requests
    assert request.headers["authorization"].startswith("Bearer ")
    assert request.jwt_header["alg"] == "RS256"
    assert request.jwt_claims["application_id"] == vonage_api.credentials.application_id
    assert request.jwt_claims["exp"] > time.time()


def test_create_call_with_an_answer_url(vonage_api):
    place_call(ncco=None, answer_url="https://callrouting.test/vonage/answer/tok123")

    (body,) = vonage_api.calls_created()
    assert body["answer_url"] == ["https://callrouting.test/vonage/answer/tok123"]
    assert "ncco" not in body and "ringing_timer" not in body and "machine_detection" not in body


@pytest.mark.parametrize("kwargs", [{"ncco": None}, {"answer_url": "https://callrouting.test/answer"}])
def test_create_call_needs_exactly_one_of_ncco_and_answer_url(vonage_api, kwargs):
    with pytest.raises(ValueError):
        place_call(**kwargs)
    assert vonage_api.requests == []


@pytest.mark.parametrize("number", ["", "015110000002", "+49 151 1000", "+49151abc", "sip:alice@example.com"])
def test_create_call_refuses_numbers_that_are_not_e164(vonage_api, number):
    with pytest.raises(TelephonyError) as caught:
        place_call(to=number)
    assert caught.value.permanent
    assert vonage_api.requests == []


# --- changing live calls -------------------------------------------------------------------------------------


def test_hangup(vonage_api):
    uuid = place_call()
    get_telephony().hangup(uuid)

    assert vonage_api.modifications(uuid) == [{"action": "hangup"}]
    assert vonage_api.requests[-1].jwt_claims["application_id"] == vonage_api.credentials.application_id


def test_transfer_sends_the_ncco_exactly(vonage_api):
    ncco = [
        {"action": "conversation", "name": "incident-42", "startOnEnter": True, "endOnExit": True},
    ]
    get_telephony().transfer_ncco("63f61863-4a51-4f6b-86e1-46edebcf9356", NCCO + ncco)

    assert vonage_api.modifications("63f61863-4a51-4f6b-86e1-46edebcf9356") == [
        {"action": "transfer", "destination": {"type": "ncco", "ncco": NCCO + ncco}}
    ]


@pytest.mark.parametrize("uuid", ["", "../account", "abc/def", "a b", None])
def test_call_uuids_cannot_change_the_request_path(vonage_api, uuid):
    with pytest.raises(TelephonyError) as caught:
        get_telephony().hangup(uuid)
    assert caught.value.permanent
    assert vonage_api.requests == []


# --- SMS -----------------------------------------------------------------------------------------------------


def test_send_sms(vonage_api):
    message_id = get_telephony().send_sms(to=AGENT, from_=FROM, text="Incident #42 at Acme: disk full")

    assert vonage_api.sms_sent() == [
        {"to": "4915110000002", "from": "4930123456789", "text": "Incident #42 at Acme: disk full"}
    ]
    (request,) = vonage_api.requests
    assert message_id and request.auth_error is None
    assert request.headers["authorization"].startswith("Basic ")


def test_sms_after_a_voice_request_is_still_form_encoded(vonage_api):
    # The SDK's shared header dict would otherwise label the form body as JSON.
    place_call()
    get_telephony().send_sms(to=AGENT, from_="Acme", text="hello")

    request = vonage_api.requests_matching("POST", "^/sms/json$")[0]
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert vonage_api.sms_sent() == [{"to": "4915110000002", "from": "Acme", "text": "hello"}]


def test_sms_with_wrong_credentials_is_a_permanent_error(vonage_api, settings):
    settings.VONAGE_API_SECRET = "wrong"
    with pytest.raises(TelephonyError) as caught:
        get_telephony().send_sms(to=AGENT, from_=FROM, text="hello")
    assert (caught.value.status, caught.value.permanent) == (401, True)
    assert vonage_api.sms_sent() == []


@pytest.mark.parametrize("code, permanent", [("1", False), ("5", False), ("4", True), ("15", True)])
def test_sms_api_error_codes(vonage_api, code, permanent):
    body = {"message-count": "1", "messages": [{"status": code, "error-text": "scripted"}]}
    vonage_api.fail_next("POST", "^/sms/json$", 200, body=body)
    with pytest.raises(TelephonyError) as caught:
        get_telephony().send_sms(to=AGENT, from_=FROM, text="hello")
    assert caught.value.permanent is permanent


# --- recordings ----------------------------------------------------------------------------------------------


def test_download_recording(vonage_api):
    url = vonage_api.add_recording(b"ID3 fake mp3 bytes" * 1000)

    assert get_telephony().download_recording(url) == b"ID3 fake mp3 bytes" * 1000
    (request,) = vonage_api.requests
    assert request.jwt_claims["application_id"] == vonage_api.credentials.application_id


def test_download_of_a_missing_recording_is_permanent(vonage_api):
    url = vonage_api.add_recording(b"x").rsplit("/", 1)[0] + "/unknown-file"
    with pytest.raises(TelephonyError) as caught:
        get_telephony().download_recording(url)
    assert (caught.value.status, caught.value.permanent) == (404, True)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/v1/files/abc",
        "https://api.nexmo.com.evil.example.com/v1/files/abc",
        "https://evilnexmo.com/v1/files/abc",
        "http://api.nexmo.com/v1/files/abc",
        "https://api.nexmo.com@evil.example.com/v1/files/abc",
        "https://api.nexmo.com:8443/v1/files/abc",
        "file:///etc/passwd",
        "not a url",
    ],
)
def test_download_refuses_hosts_that_are_not_vonage(vonage_api, url):
    with pytest.raises(TelephonyError) as caught:
        get_telephony().download_recording(url)
    assert caught.value.permanent
    assert vonage_api.requests == []


@pytest.mark.parametrize(
    "url",
    ["https://api.nexmo.com/v1/files/a", "https://api-us.nexmo.com/v1/files/a", "https://api.eu.vonage.com/v1/files/a"],
)
def test_vonage_hosts_may_receive_the_jwt(url):
    assert Telephony(api_host="127.0.0.1:1234")._recording_url_allowed(url)


def test_the_plain_http_fake_host_is_refused(vonage_api):
    assert not get_telephony()._recording_url_allowed(f"http://{vonage_api.host}/v1/files/a")


# --- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, permanent",
    [(500, False), (502, False), (503, False), (429, False), (400, True), (401, True), (403, True), (404, True)],
)
def test_http_errors_are_mapped(vonage_api, status, permanent):
    vonage_api.fail_next("POST", "^/v1/calls$", status)
    with pytest.raises(TelephonyError) as caught:
        place_call()
    assert (caught.value.status, caught.value.permanent) == (status, permanent)
    assert vonage_api.calls_created() == []


def test_the_fake_refuses_a_jwt_from_another_key(vonage_api, settings):
    # An authentic 401: the fake checks the JWT against the application's public key.
    from tests.fake_vonage import Credentials

    settings.VONAGE_PRIVATE_KEY = Credentials.generate().private_key_pem
    with pytest.raises(TelephonyError) as caught:
        place_call()
    assert (caught.value.status, caught.value.permanent) == (401, True)
    assert vonage_api.requests[0].auth_error


def test_a_timeout_is_temporary_and_not_retried(vonage_api, settings):
    settings.VONAGE_TIMEOUT = 1
    vonage_api.hang_next("POST", "^/v1/calls$", seconds=2.5)

    with pytest.raises(TelephonyError) as caught:
        place_call()
    assert (caught.value.status, caught.value.permanent) == (None, False)
    assert "timed out" in caught.value.message
    # POST is not idempotent: the SDK must not send a second call request.
    assert len(vonage_api.requests_matching("POST", "^/v1/calls$")) == 1


def test_a_connection_error_is_temporary(settings):
    settings.VONAGE_API_HOST = "127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(TelephonyError) as caught:
        place_call()
    assert (caught.value.status, caught.value.permanent) == (None, False)


# --- configuration -------------------------------------------------------------------------------------------


def test_not_configured_without_application_credentials(vonage_api, settings):
    settings.VONAGE_APPLICATION_ID = ""
    assert not is_configured()
    with pytest.raises(NotConfigured) as caught:
        place_call()
    assert caught.value.permanent and isinstance(caught.value, TelephonyError)
    assert vonage_api.requests == []


def test_sms_not_configured_without_api_key(vonage_api, settings):
    settings.VONAGE_API_KEY = settings.VONAGE_API_SECRET = ""
    with pytest.raises(NotConfigured):
        get_telephony().send_sms(to=AGENT, from_=FROM, text="hello")


def test_private_key_from_a_file(vonage_api, settings, tmp_path):
    path = tmp_path / "private"  # no extension, like a Docker secret
    path.write_text(vonage_api.credentials.private_key_pem)
    settings.VONAGE_PRIVATE_KEY = str(path)
    place_call()
    assert len(vonage_api.calls_created()) == 1


def test_private_key_with_literal_newline_escapes(vonage_api, settings):
    settings.VONAGE_PRIVATE_KEY = vonage_api.credentials.private_key_pem.strip().replace("\n", "\\n")
    place_call()
    assert len(vonage_api.calls_created()) == 1


def test_pkcs1_private_key_is_converted(vonage_api, settings):
    key = serialization.load_pem_private_key(vonage_api.credentials.private_key_pem.encode(), password=None)
    settings.VONAGE_PRIVATE_KEY = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    place_call()
    assert len(vonage_api.calls_created()) == 1


@pytest.mark.parametrize(
    "value", ["/nonexistent/private.key", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----"]
)
def test_unusable_private_key_is_not_configured_and_not_logged(vonage_api, settings, caplog, value):
    settings.VONAGE_PRIVATE_KEY = value
    with pytest.raises(NotConfigured) as caught:
        place_call()
    assert "c2VjcmV0" not in str(caught.value) and "c2VjcmV0" not in caplog.text


def test_client_is_cached_and_rebuilt_on_settings_change(settings):
    client = get_telephony()
    assert get_telephony() is client
    settings.VONAGE_TIMEOUT = 2
    assert get_telephony() is not client
    client = get_telephony()
    reset_telephony()
    assert get_telephony() is not client


def test_one_log_line_per_call_without_secrets(vonage_api, caplog):
    caplog.set_level(logging.INFO, logger="incidents.telephony")
    uuid = place_call()
    get_telephony().send_sms(to=AGENT, from_=FROM, text="hello")

    lines = [r.getMessage() for r in caplog.records if r.name == "incidents.telephony"]
    masked = f"***{AGENT[-4:]}"  # numbers keep their last four digits in the logs
    assert lines == [
        f"vonage action=create_call to={masked} uuid={uuid}",
        lines[1],
    ]
    assert lines[1].startswith(f"vonage action=send_sms to={masked} message_id=")
    for secret in (vonage_api.credentials.api_secret, "BEGIN PRIVATE KEY", "Bearer", "Basic"):
        assert secret not in caplog.text


def test_sdk_debug_logging_does_not_leak_credentials(vonage_api, caplog):
    caplog.set_level(logging.DEBUG, logger="vonage")
    # The SDK logs its header dict before setting this request's credentials: the second request shows the first's.
    for _ in range(2):
        place_call()
        get_telephony().send_sms(to=AGENT, from_=FROM, text="hello")

    assert "Authorization" in caplog.text  # the SDK did log its headers...
    assert "eyJ" not in caplog.text  # ...but not the JWT
    assert "[redacted]" in caplog.text


def test_a_timed_out_transfer_is_sent_once(vonage_api, settings):
    settings.VONAGE_TIMEOUT = 1
    vonage_api.hang_next("PUT", "^/v1/calls/", seconds=2.5)

    with pytest.raises(TelephonyError) as caught:
        get_telephony().transfer_ncco("63f61863-4a51-4f6b-86e1-46edebcf9356", [{"action": "talk", "text": "hi"}])
    assert not caught.value.permanent
    assert len(vonage_api.requests_matching("PUT", "^/v1/calls/")) == 1


def test_connections_closed_by_the_server_are_reopened(vonage_api):
    telephony = get_telephony()
    uuid = place_call()
    vonage_api.drop_connections()
    time.sleep(0.1)
    telephony.hangup(uuid)
    vonage_api.drop_connections()
    time.sleep(0.1)
    place_call()
    assert len(vonage_api.calls_created()) == 2 and vonage_api.modifications(uuid) == [{"action": "hangup"}]


def test_each_request_gets_a_fresh_jwt_without_parsing_the_key_again(vonage_api, monkeypatch):
    # Parsing the PEM costs ~60 ms of RSA checks: the client signs with the parsed key instead of PEM text.
    import jwt.algorithms

    prepared = []
    original = jwt.algorithms.RSAAlgorithm.prepare_key

    def spy(self, key):
        prepared.append(key)
        return original(self, key)

    monkeypatch.setattr(jwt.algorithms.RSAAlgorithm, "prepare_key", spy)
    place_call()
    place_call()
    assert not [key for key in prepared if isinstance(key, (str, bytes)) and b"PRIVATE KEY" in
                (key.encode() if isinstance(key, str) else key)]
    first, second = vonage_api.requests
    assert first.jwt_claims["jti"] != second.jwt_claims["jti"]
    assert second.jwt_claims["application_id"] == vonage_api.credentials.application_id
