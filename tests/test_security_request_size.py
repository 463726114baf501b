"""Request bodies are capped before they are read (callrouting/middleware.py): a body declared larger than
MAX_REQUEST_BODY_SIZE gets 413 without a byte of it being read, parsed or spooled to disk, for anonymous requests
too; a body without a length (chunked) gets 411. Audio conversion does bounded work."""
import socket
from urllib.parse import urlsplit

import miniaudio
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from callrouting import audio
from tests.callrouting_factories import RoutingNumberFactory
from tests.test_callrouting_audio import wav_bytes

FIFTY_MB = 50 * 1024 * 1024


def raw_request(live_server, head, body=b""):
    """Send HEAD (request line and headers) and the start of BODY over a socket; return the status line.

    The server answers while most of the declared body is still unsent: it cannot have read it."""
    address = urlsplit(live_server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(head.encode() + b"\r\n" + body)
        answer = connection.makefile("rb").readline()
    return answer.decode().strip()


@pytest.mark.parametrize("path", ["/api/audio/", "/accounts/login/", "/vonage/answer"])
def test_fifty_megabytes_declared_get_413_before_the_body_is_sent(live_server, path):
    head = (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {FIFTY_MB}\r\n"
    )
    # 64 KB of the 50 MB: the answer arrives although the server would wait for the rest if it read the body.
    assert raw_request(live_server, head, b"--x\r\n" + b"a" * 65536).startswith("HTTP/1.1 413")


def test_a_chunked_body_gets_411(live_server):
    head = "POST /api/audio/ HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
    assert raw_request(live_server, head, b"10000\r\n" + b"a" * 65536).startswith("HTTP/1.1 411")


class RecordingHandler(FileUploadHandler):
    """An upload handler that records being used: the middleware must answer before any handler runs."""

    used = []

    def __init__(self, request=None):
        super().__init__(request)
        self.used.append(request)

    def receive_data_chunk(self, raw_data, start):
        return raw_data

    def file_complete(self, file_size):
        return None


@pytest.mark.django_db
def test_a_fifty_megabyte_upload_is_refused_and_nothing_is_written(settings, tmp_path, client, alice, acme):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_HANDLERS = [
        f"{RecordingHandler.__module__}.RecordingHandler",
        "django.core.files.uploadhandler.TemporaryFileUploadHandler",
    ]
    RecordingHandler.used.clear()
    number = RoutingNumberFactory(account=acme)
    client.force_login(alice)
    huge = SimpleUploadedFile("music.wav", b"RIFF" + b"\0" * FIFTY_MB, content_type="audio/wav")
    for url in ("/api/audio/", f"/numbers/{number.pk}/audio/"):
        response = client.post(url, {"routing_number": number.pk, "kind": "hold_music", "file": huge, "upload": huge})
        huge.seek(0)
        assert response.status_code == 413
    assert RecordingHandler.used == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db
def test_the_limit_is_the_setting(settings, client):
    settings.MAX_REQUEST_BODY_SIZE = 1000
    over = client.generic("POST", "/api/audio/", b"x" * 1001, content_type="application/json")
    assert over.status_code == 413 and "larger than" in over.json()["detail"]
    under = client.generic("POST", "/api/audio/", b"x" * 1000, content_type="application/json")
    assert under.status_code in (401, 403)  # reached the API, which wants a login


def test_audio_conversion_is_bounded_by_the_duration_limit(monkeypatch):
    """A WAV longer than the limit is refused from its header, before it is decoded; one within the limit is
    decoded once, to at most the limit's worth of samples."""
    decoded = []
    real = miniaudio.decode

    def counting(data, **kwargs):
        result = real(data, **kwargs)
        decoded.append(len(result.samples))
        return result

    monkeypatch.setattr(miniaudio, "decode", counting)
    long = wav_bytes(sample_width=1, rate=8000, seconds=audio.MAX_SECONDS["hold_music"] + 1)
    with pytest.raises(audio.AudioError, match="the limit for this recording is 10:00"):
        audio.prepare(SimpleUploadedFile("long.wav", long), "hold_music")
    assert decoded == []
    audio.prepare(SimpleUploadedFile("ok.wav", wav_bytes(sample_width=1, rate=8000, seconds=30)), "hold_music")
    assert len(decoded) == 1 and decoded[0] <= audio.MAX_SECONDS["hold_music"] * audio.HOLD_MUSIC_RATE
