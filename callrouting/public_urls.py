"""Public media (mounted at the root), addressed by an unguessable token or a signed, expiring link.

/audio/<token>.<mp3|wav>   a number's custom audio, fetched by Vonage (stream action, hold music)
/voicemail/<signed>.mp3    a stored voicemail recording, linked from alert action payloads (signed, expires)
"""
from django.urls import path

from . import views

urlpatterns = [
    path("audio/<slug:token>.<str:ext>", views.audio_file, name="callrouting-audio"),
    path("voicemail/<str:signed>.mp3", views.voicemail_recording, name="callrouting-voicemail"),
]
