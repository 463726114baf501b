"""URLs of the incidents app, included under /incidents/ by callrouting/urls.py."""
from django.urls import path

from . import views

app_name = "incidents"

urlpatterns = [
    path("voice/test-call/event", views.test_call_event, name="test-call-event"),
    path("voice/<str:token>/input", views.voice_input, name="voice-input"),
    path("voice/<str:token>/event", views.voice_event, name="voice-event"),
    path("<int:pk>", views.incident_link, name="detail"),
]
