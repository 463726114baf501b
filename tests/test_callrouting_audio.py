"""Custom audio of a number: uploads checked by content (real small MP3 and WAV files made here, a renamed text
file, an oversize and an overlong file), converted where needed, served to Vonage from unguessable URLs with
cache headers, and used in the NCCOs (greeting, hold music, mailbox greeting). Sam (support staff) sees an audio
player in the admin."""
import io
import math
import wave

import lameenc
import miniaudio
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from callrouting import audio, number_forms
from callrouting.models import NumberAudio
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)

pytestmark = pytest.mark.django_db


def tone(frames, rate, *, amplitude=0.5, freq=440):
    return [amplitude * math.sin(2 * math.pi * freq * i / rate) for i in range(frames)]


def wav_bytes(*, channels=1, sample_width=2, rate=16000, seconds=1.0):
    """A real WAV file (a 440 Hz tone) written with the standard library's wave module."""
    frames = int(rate * seconds)
    peak = 2 ** (8 * sample_width - 1) - 1
    data = bytearray()
    for value in tone(frames, rate):
        sample = int(value * peak)
        encoded = (sample + 128).to_bytes(1, "little") if sample_width == 1 else sample.to_bytes(sample_width, "little", signed=True)
        data += encoded * channels
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(sample_width)
        writer.setframerate(rate)
        writer.writeframes(bytes(data))
    return out.getvalue()


def mp3_bytes(*, channels=1, rate=16000, seconds=1.0):
    """A real MP3 file encoded with LAME."""
    import array

    samples = array.array("h", [int(v * 32767) for v in tone(int(rate * seconds), rate) for _ in range(channels)])
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(64)
    encoder.set_in_sample_rate(rate)
    encoder.set_out_sample_rate(rate)
    encoder.set_channels(channels)
    encoder.set_quality(7)
    return bytes(encoder.encode(samples.tobytes()) + encoder.flush())


def upload(name, content):
    return SimpleUploadedFile(name, content)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def number(acme, alice, bob, media):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", greeting="Welcome to Acme.", voicemail_enabled=True)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice))
    RoutingOptionFactory(routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob))
    return number


def save_audio(number, kind, name, content):
    form = number_forms.AudioUploadForm({"kind": kind}, {"upload": upload(name, content)}, number=number)
    assert form.is_valid(), form.errors
    return form.save()


# --- validation and conversion ----------------------------------------------------------------------------------


def test_valid_mp3_is_kept_as_uploaded():
    content = mp3_bytes(channels=2, rate=44100, seconds=1.5)
    prepared = audio.prepare(upload("hello.mp3", content), "greeting")
    assert prepared.format == "mp3" and prepared.content == content
    assert 1.4 < prepared.duration < 1.7
    assert prepared.details == "MP3 (stereo, 44100 Hz), kept."


def test_mono_16_bit_wav_is_kept_as_uploaded():
    content = wav_bytes(rate=8000, seconds=2)
    prepared = audio.prepare(upload("hello.wav", content), "mailbox_greeting")
    assert prepared.format == "wav" and prepared.content == content and prepared.duration == pytest.approx(2.0)


def test_stereo_24_bit_44k_wav_is_converted_to_mono_16_bit_16k():
    content = wav_bytes(channels=2, sample_width=3, rate=44100, seconds=1)
    prepared = audio.prepare(upload("studio.wav", content), "greeting")
    assert prepared.format == "wav" and prepared.content != content
    with wave.open(io.BytesIO(prepared.content)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 16000)
        assert reader.getnframes() == pytest.approx(16000, abs=10)
    assert prepared.details == "WAV (stereo, 24-bit, 44100 Hz) converted to mono 16-bit 16000 Hz."


def test_8_bit_wav_is_converted():
    prepared = audio.prepare(upload("old.wav", wav_bytes(sample_width=1, rate=11025)), "greeting")
    with wave.open(io.BytesIO(prepared.content)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 16000)


def test_wav_hold_music_becomes_mp3():
    prepared = audio.prepare(upload("music.wav", wav_bytes(channels=2, rate=48000, seconds=3)), "hold_music")
    assert prepared.format == "mp3" and audio.sniff(prepared.content) == "mp3"
    info = miniaudio.mp3_get_info(prepared.content)
    assert info.nchannels == 1 and info.duration == pytest.approx(3, abs=0.2)


def test_renamed_text_file_is_refused():
    with pytest.raises(audio.AudioError) as error:
        audio.prepare(upload("greeting.mp3", b"Hello, this is our greeting script.\nPress 1 for outages.\n"), "greeting")
    assert str(error.value) == "“greeting.mp3” is not an MP3 or WAV file: its content is text although its name ends in .mp3."


def test_oversize_file_is_refused_before_it_is_read():
    content = b"RIFF" + b"\0\0\0\0" + b"WAVE" + b"\0" * (audio.MAX_BYTES - 11)
    with pytest.raises(audio.AudioError) as error:
        audio.prepare(upload("huge.wav", content), "hold_music")
    assert str(error.value) == "“huge.wav” is 10.0 MB; the limit is 10 MB."


def test_too_long_greeting_is_refused():
    content = wav_bytes(rate=8000, seconds=121)
    with pytest.raises(audio.AudioError) as error:
        audio.prepare(upload("long.wav", content), "greeting")
    assert str(error.value) == "“long.wav” is 2:01 long; the limit for this recording is 2:00 minutes."
    assert audio.prepare(upload("long.wav", content), "hold_music").duration == pytest.approx(121)  # 10 minutes


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("broken.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 2000, "looks like MP3 but cannot be decoded"),
        ("cut.wav", wav_bytes()[:30], "looks like WAV but cannot be decoded"),
        ("empty.wav", b"", "is empty"),
        ("photo.wav", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "its content is not audio although its name ends in .wav"),
        ("silence.wav", wav_bytes(seconds=0.05), "contains no audio"),
    ],
)
def test_damaged_or_wrong_files_get_clear_errors(name, content, message):
    with pytest.raises(audio.AudioError) as error:
        audio.prepare(upload(name, content), "greeting")
    assert message in str(error.value)


def test_upload_form_reports_the_error_on_the_file_field(number):
    form = number_forms.AudioUploadForm({"kind": "greeting"}, {"upload": upload("notes.wav", b"just some notes\n")}, number=number)
    assert not form.is_valid()
    assert form.errors["upload"] == ["“notes.wav” is not an MP3 or WAV file: its content is text although its name ends in .wav."]
    assert not NumberAudio.objects.exists()


# --- serving ------------------------------------------------------------------------------------------------------


def test_audio_is_served_from_an_unguessable_url_with_cache_headers(client, number):
    content = mp3_bytes(seconds=1)
    stored = save_audio(number, "greeting", "welcome.mp3", content)
    assert len(stored.token) >= 32 and stored.token not in stored.file.name
    url = stored.get_absolute_url()
    assert url == f"/audio/{stored.token}.mp3"
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    assert response["Cache-Control"] == "public, max-age=86400, immutable"
    assert b"".join(response.streaming_content) == content
    assert client.head(url).status_code == 200
    assert client.get(f"/audio/{stored.token}.wav").status_code == 404
    assert client.get(f"/audio/{'x' * 32}.mp3").status_code == 404
    assert client.post(url).status_code == 405


def test_a_new_upload_gets_a_new_url(client, number, django_capture_on_commit_callbacks):
    first = save_audio(number, "mailbox_greeting", "a.wav", wav_bytes())
    old_url, old_path = first.get_absolute_url(), first.file.path
    with django_capture_on_commit_callbacks(execute=True):
        second = save_audio(number, "mailbox_greeting", "b.wav", wav_bytes(channels=2))
    assert NumberAudio.objects.count() == 1 and second.token != first.token
    assert client.get(old_url).status_code == 404
    response = client.get(second.get_absolute_url())
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    import os

    assert not os.path.exists(old_path)  # the replaced file is deleted once the change is committed


# --- NCCOs --------------------------------------------------------------------------------------------------------


def test_custom_greeting_replaces_spoken_greeting_and_menu(phone, number):
    stored = save_audio(number, "greeting", "welcome.mp3", mp3_bytes())
    response, uuid = phone.dial(number.phone_number)
    stream, entry = response.json()
    assert stream == {"action": "stream", "streamUrl": [f"https://callrouting.test/audio/{stored.token}.mp3"], "bargeIn": True}
    assert entry["action"] == "input" and entry["speech"]["context"] == ["Outage", "Billing"]


def test_custom_hold_music_plays_while_agents_are_called(phone, number):
    stored = save_audio(number, "hold_music", "music.wav", wav_bytes(seconds=2))
    assert stored.format == "mp3"
    response, uuid = phone.dial(number.phone_number)
    connecting, conversation = phone.press(response.json(), "1").json()
    assert conversation["musicOnHoldUrl"] == [f"https://callrouting.test/audio/{stored.token}.mp3"]


def test_mailbox_greeting_streams_before_the_recording(phone, number):
    number.voicemail_only = True
    number.voicemail_greeting = "Replaced by the recording."
    number.save()
    stored = save_audio(number, "mailbox_greeting", "box.wav", wav_bytes())
    response, uuid = phone.dial(number.phone_number)
    stream, notify, record, thanks = response.json()
    assert stream == {"action": "stream", "streamUrl": [f"https://callrouting.test/audio/{stored.token}.wav"]}
    assert (notify["action"], record["action"]) == ("notify", "record")


def test_admin_shows_an_audio_player(client, sam, number):
    stored = save_audio(number, "greeting", "welcome.mp3", mp3_bytes())
    client.force_login(sam)
    page = client.get(f"/admin/callrouting/routingnumber/{number.pk}/change/").content.decode()
    assert f'<audio controls preload="none" src="/audio/{stored.token}.mp3"></audio>' in page
    assert "Import holidays (.ics)" in page and "Support hours" in page


def test_removing_a_recording_deletes_its_file(client, number, django_capture_on_commit_callbacks):
    import os

    from callrouting.custom_audio import remove_audio

    stored = save_audio(number, "greeting", "welcome.wav", wav_bytes())
    path, url = stored.file.path, stored.get_absolute_url()
    with django_capture_on_commit_callbacks(execute=True):
        remove_audio(stored)
    assert not os.path.exists(path) and client.get(url).status_code == 404
