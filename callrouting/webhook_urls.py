"""Vonage webhook URLs, mounted under /vonage/. answer, event and fallback are set once on the Vonage
application; the tokenised per-call and per-leg URLs are handed to Vonage inside NCCOs and create-call requests."""
from django.urls import path

from . import views

app_name = "callrouting"

urlpatterns = [
    path("answer", views.answer, name="answer"),
    path("event", views.event, name="event"),
    path("fallback", views.fallback, name="fallback"),
    path("call/<str:token>/input", views.call_input, name="call-input"),
    path("call/<str:token>/recording-started", views.call_recording_started, name="call-recording-started"),
    path("call/<str:token>/recording", views.call_recording, name="call-recording"),
    path("call/<str:token>/transcription", views.call_transcription, name="call-transcription"),
    path("leg/<str:token>/event", views.leg_event, name="leg-event"),
    path("leg/<str:token>/input", views.leg_input, name="leg-input"),
    path("benchmark-floor", views.benchmark_floor, name="benchmark-floor"),
]
