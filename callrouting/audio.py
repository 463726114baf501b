"""Custom audio uploads: check what a file really is, enforce the limits, convert it to what Vonage plays well.

Vonage streams MP3 or 16-bit WAV (stream action) and MP3 only as conversation hold music (musicOnHoldUrl).
What is kept (decided here, nowhere else):
- MP3 (MPEG audio, mono or stereo, decodable): kept as uploaded; Vonage plays it as is.
- WAV that is mono, 16-bit PCM at 8-48 kHz: kept as uploaded.
- any other WAV (stereo, 8/24/32-bit, float, another rate): converted to mono 16-bit PCM WAV at 16 kHz.
- hold music that is a WAV: encoded to a mono 64 kbit/s MP3 at 22.05 kHz (musicOnHoldUrl wants MP3).
The format is sniffed from the bytes (RIFF/WAVE header, ID3 tag or MPEG frame sync) and the file is decoded in
full with miniaudio, so a renamed text file or a truncated upload is refused whatever its name says.
"""
import array
import io
import os
import wave
from dataclasses import dataclass

import miniaudio

MAX_BYTES = 10 * 1024 * 1024
MAX_SECONDS = {"greeting": 120, "hold_music": 600, "mailbox_greeting": 120}
MIN_SECONDS = 0.2
WAV_RATES = range(8000, 48001)
CONVERTED_RATE = 16000
HOLD_MUSIC_RATE = 22050
HOLD_MUSIC_KBPS = 64


class AudioError(ValueError):
    """An upload that cannot be used; the message names the problem for the person who uploaded it."""


@dataclass(frozen=True)
class PreparedAudio:
    """What is stored for an upload: CONTENT in FORMAT ("mp3" or "wav"), its DURATION and what was done."""

    content: bytes
    format: str
    duration: float
    original_name: str
    details: str


def sniff(data):
    """"wav", "mp3" or None, from the first bytes (not the name)."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3":
        return "mp3"
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and data[1] & 0x06:  # frame sync, layer set
        return "mp3"
    return None


def _describe(name, data):
    looks = "text" if data[:512] and all(32 <= b < 127 or b in (9, 10, 13) for b in data[:512]) else "not audio"
    extension = os.path.splitext(name)[1].lower()
    renamed = f" although its name ends in {extension}" if extension in (".mp3", ".wav") else ""
    return f"“{name}” is not an MP3 or WAV file: its content is {looks}{renamed}."


def _minutes(seconds):
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def prepare(upload, kind):
    """Check the uploaded file UPLOAD (a Django UploadedFile, or any object with .name, .size and .read())
    for KIND (a NumberAudio.Kind value) and return the PreparedAudio to store. Raises AudioError."""
    name = os.path.basename(getattr(upload, "name", "") or "upload")[:255]
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_BYTES:
        raise AudioError(f"“{name}” is {size / 1024 / 1024:.1f} MB; the limit is {MAX_BYTES // 1024 // 1024} MB.")
    data = upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise AudioError(f"“{name}” is larger than {MAX_BYTES // 1024 // 1024} MB, the limit.")
    if not data:
        raise AudioError(f"“{name}” is empty.")
    kind_format = sniff(data)
    if kind_format is None:
        raise AudioError(_describe(name, data))
    try:
        info = miniaudio.wav_get_info(data) if kind_format == "wav" else miniaudio.mp3_get_info(data)
    except miniaudio.MiniaudioError as exc:
        label = "WAV" if kind_format == "wav" else "MP3"
        raise AudioError(f"“{name}” looks like {label} but cannot be decoded (damaged or an unsupported encoding).") from exc
    if info.num_frames <= 0 or info.duration < MIN_SECONDS:
        raise AudioError(f"“{name}” contains no audio (shorter than {MIN_SECONDS} s).")
    limit = MAX_SECONDS.get(kind, 120)
    if info.duration > limit:
        raise AudioError(
            f"“{name}” is {_minutes(info.duration)} long; the limit for this recording is {_minutes(limit)} minutes."
        )
    if kind == "hold_music" and kind_format == "wav":
        content = _to_mp3(data)
        details = f"WAV ({_wav_shape(info)}) encoded to MP3 (mono, {HOLD_MUSIC_RATE} Hz) for hold music."
        return PreparedAudio(content, "mp3", info.duration, name, details)
    if kind_format == "mp3":
        return PreparedAudio(data, "mp3", info.duration, name, f"MP3 ({_channels(info)}, {info.sample_rate} Hz), kept.")
    if info.nchannels == 1 and info.sample_format == miniaudio.SampleFormat.SIGNED16 and info.sample_rate in WAV_RATES \
            and _is_plain_pcm(data):
        return PreparedAudio(data, "wav", info.duration, name, f"WAV ({_wav_shape(info)}), kept.")
    content = _to_wav(data)
    return PreparedAudio(
        content, "wav", info.duration, name, f"WAV ({_wav_shape(info)}) converted to mono 16-bit {CONVERTED_RATE} Hz."
    )


def _channels(info):
    return {1: "mono", 2: "stereo"}.get(info.nchannels, f"{info.nchannels} channels")


def _wav_shape(info):
    bits = {
        miniaudio.SampleFormat.UNSIGNED8: "8-bit",
        miniaudio.SampleFormat.SIGNED16: "16-bit",
        miniaudio.SampleFormat.SIGNED24: "24-bit",
        miniaudio.SampleFormat.SIGNED32: "32-bit",
        miniaudio.SampleFormat.FLOAT32: "32-bit float",
    }.get(info.sample_format, "unknown sample format")
    return f"{_channels(info)}, {bits}, {info.sample_rate} Hz"


def _is_plain_pcm(data):
    """True when the standard library reads DATA as PCM WAV (WAVE_FORMAT_PCM): what every player handles."""
    try:
        with wave.open(io.BytesIO(data)) as reader:
            return reader.getsampwidth() == 2
    except (wave.Error, EOFError):
        return False


def _decode(data, rate):
    decoded = miniaudio.decode(data, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=rate)
    samples = decoded.samples
    return samples if isinstance(samples, array.array) else array.array("h", samples)


def _to_wav(data):
    samples = _decode(data, CONVERTED_RATE)
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(CONVERTED_RATE)
        writer.writeframes(samples.tobytes())
    return out.getvalue()


def _to_mp3(data):
    import lameenc

    samples = _decode(data, HOLD_MUSIC_RATE)
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(HOLD_MUSIC_KBPS)
    encoder.set_in_sample_rate(HOLD_MUSIC_RATE)
    encoder.set_out_sample_rate(HOLD_MUSIC_RATE)
    encoder.set_channels(1)
    encoder.set_quality(5)
    return bytes(encoder.encode(samples.tobytes()) + encoder.flush())
