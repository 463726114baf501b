"""Query-string filters of the API (django-filter). Related-object filters accept only the account's own ids,
so filtering by another account's id is the same 400 as an id that does not exist."""
from django_filters import rest_framework as filters

from incidents.models import Incident

from ..models import Call
from ..tenancy import ACCOUNT_PATHS, scoped


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
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields = ["status", "priority", "alert_source", "assigned_to"]


class CallFilter(AccountFilterSet):
    started_after = filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = Call
        fields = ["routing_number", "state", "outcome", "incident"]
