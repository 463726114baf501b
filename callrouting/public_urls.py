"""Public, token-addressed media (mounted at the root): the token in the URL is the only secret.

/audio/<token>.<mp3|wav>   a number's custom audio, fetched by Vonage (stream action, hold music)
/voicemail/<token>.mp3     a stored voicemail recording, linked from alert action payloads
"""
from django.urls import path

from . import views

urlpatterns = [
    path("audio/<slug:token>.<str:ext>", views.audio_file, name="callrouting-audio"),
    path("voicemail/<slug:token>.mp3", views.voicemail_recording, name="callrouting-voicemail"),
]
