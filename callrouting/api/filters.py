"""Query-string filters of the API (django-filter). Related-object filters accept only the account's own ids,
so filtering by another account's id is the same 400 as an id that does not exist."""
import datetime as dt

from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

from incidents.models import Incident

from ..models import Call
from ..tenancy import ACCOUNT_PATHS, scoped


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date and time, converted to UTC.

    ISO 8601 allows any UTC offset (-20:47); PostgreSQL refuses offsets beyond 15:59, so the value is compared in
    UTC. A value that has no UTC equivalent inside years 1 to 9999 is a field error.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt.timezone.utc)
        except OverflowError as exc:
            raise ValidationError("Enter a date and time between the years 1 and 9999.", code="invalid") from exc


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class AccountFilterSet(filters.FilterSet):
    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        account = getattr(getattr(request, "user", None), "account", None)
        for item in self.filters.values():
            queryset = getattr(item, "queryset", None)
            if queryset is not None and not callable(queryset) and queryset.model in ACCOUNT_PATHS:
                item.queryset = scoped(queryset, account)


class AccountFilterBackend(filters.DjangoFilterBackend):
    filterset_base = AccountFilterSet


class IncidentFilter(AccountFilterSet):
    routing_number = filters.NumberFilter(field_name="alert_source__routing_number", help_text="Routing number id.")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields = ["status", "priority", "alert_source", "assigned_to"]


class CallFilter(AccountFilterSet):
    started_after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = Call
        fields = ["routing_number", "state", "outcome", "incident"]
