"""REST API URLs, mounted at /api/: the router's resources, the OpenAPI schema and its documentation pages."""
from django.urls import include, path
from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from . import docs, flows, views

router = DefaultRouter()
router.register("numbers", views.RoutingNumberViewSet, basename="routingnumber")
router.register("routing-options", views.RoutingOptionViewSet, basename="routingoption")
router.register("flows", flows.CallFlowViewSet, basename="callflow")
router.register("flow-versions", flows.FlowVersionViewSet, basename="flowversion")
router.register("calendars", views.SupportCalendarViewSet, basename="supportcalendar")
router.register("support-hours-ranges", views.SupportHoursRangeViewSet, basename="supporthoursrange")
router.register("holidays", views.HolidayViewSet, basename="holiday")
router.register("audio", views.NumberAudioViewSet, basename="numberaudio")
router.register("escalation-policies", views.EscalationPolicyViewSet, basename="escalationpolicy")
router.register("escalation-rules", views.EscalationRuleViewSet, basename="escalationrule")
router.register("schedules", views.OnCallScheduleViewSet, basename="oncallschedule")
router.register("rotation-layers", views.RotationLayerViewSet, basename="rotationlayer")
router.register("layer-restrictions", views.LayerRestrictionViewSet, basename="layerrestriction")
router.register("schedule-overrides", views.ScheduleOverrideViewSet, basename="scheduleoverride")
router.register("users", views.UserViewSet, basename="user")
router.register("tokens", views.ApiTokenViewSet, basename="apitoken")
router.register("contact-methods", views.ContactMethodViewSet, basename="contactmethod")
router.register("notification-rules", views.NotificationRuleViewSet, basename="notificationrule")
router.register("alert-sources", views.AlertSourceViewSet, basename="alertsource")
router.register("alert-actions", views.AlertActionViewSet, basename="alertaction")
router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("calls", views.CallViewSet, basename="call")

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's start-up script is a second request to the same URL (?script), not an inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    # Redoc writes its styles into <style> elements at run time and searches in a worker it builds from a blob:
    # this page alone allows both.
    path("redoc/", csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]})(
        SpectacularRedocView.as_view(url_name="api:schema")), name="redoc"),
    path("redoc/redoc.standalone.js", docs.redoc_bundle, name="redoc-bundle"),
    path("", include(router.urls)),
]
