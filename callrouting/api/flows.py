"""REST API of call flows: a number's flow as JSON (draft with its revision, validate, publish, versions, restore,
import and export, dry run). Errors in a document are pinned to nodes: {"node", "field", "message"}.

The views only read the request and answer; the changes are flows.actions' verbs.
"""
import datetime as dt

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from ..flows import actions, document as doc
from ..flows.models import CallFlow, FlowVersion
from ..tenancy import scoped
from .views import AccountMember, AccountViewSet

# --- Serializers -----------------------------------------------------------------------------------------------


class NodeErrorSerializer(serializers.Serializer):
    node = serializers.CharField(allow_null=True, help_text="The node id (null: the document itself).")
    field = serializers.CharField(allow_null=True, help_text='A path in the node, e.g. "branches[1].key".')
    message = serializers.CharField()


def errors_data(errors):
    return [error.as_dict() for error in errors]


class CallFlowSerializer(serializers.ModelSerializer):
    published_number = serializers.IntegerField(source="published.number", allow_null=True, read_only=True,
                                                help_text="The published version's number (1, 2, ...).")

    class Meta:
        model = CallFlow
        fields = ["id", "number", "draft_revision", "published", "published_number", "updated_by", "updated_at"]
        read_only_fields = fields


class DocumentField(serializers.JSONField):
    """A flow document (schema 1): see the README, "Call flows"."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("A flow document is a JSON object.")
        return data


class DraftSerializer(serializers.Serializer):
    revision = serializers.IntegerField(min_value=0, help_text="The draft_revision the change starts from.")
    document = DocumentField()


class DraftAnswerSerializer(serializers.Serializer):
    revision = serializers.IntegerField()
    document = serializers.JSONField()
    errors = NodeErrorSerializer(many=True, help_text="What must be fixed before the draft can be published.")


class ValidateSerializer(serializers.Serializer):
    document = DocumentField(required=False, help_text="A document to check (default: the saved draft).")


class ValidationAnswerSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = NodeErrorSerializer(many=True)


class FlowVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = FlowVersion
        fields = ["id", "flow", "number", "published_by", "published_at", "summary"]
        read_only_fields = fields


class FlowVersionDetailSerializer(FlowVersionSerializer):
    class Meta(FlowVersionSerializer.Meta):
        fields = [*FlowVersionSerializer.Meta.fields, "document"]
        read_only_fields = fields


class RestoreSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The id of a version of this flow.")


class DryRunSerializer(serializers.Serializer):
    at = serializers.DateTimeField(required=False, help_text="When the call comes in (default: now).")
    caller = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    inputs = serializers.ListField(
        child=serializers.CharField(max_length=40, allow_blank=True), required=False, default=list, max_length=100,
        help_text='In order: "1" (a key), "say:billing", "pin:1234", "silence", "nobody_answers", "answers".',
    )
    version = serializers.IntegerField(required=False, help_text="A version's id (default: the draft).")


class DryRunAnswerSerializer(serializers.Serializer):
    steps = serializers.ListField(child=serializers.JSONField())
    ended = serializers.BooleanField()


# --- Views -----------------------------------------------------------------------------------------------------


def draft_answer(flow, errors):
    return {"revision": flow.draft_revision, "document": flow.draft, "errors": errors_data(errors)}


def refused(exc):
    """The answer for a refused verb: 409 for a stale revision, 400 (with errors pinned to nodes) otherwise."""
    if isinstance(exc, actions.StaleDraft):
        return Response({"detail": str(exc), "revision": exc.revision}, status=status.HTTP_409_CONFLICT)
    return Response({"detail": str(exc), "errors": errors_data(getattr(exc, "errors", []))},
                    status=status.HTTP_400_BAD_REQUEST)


class CallFlowViewSet(AccountViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """The call flow of each routing number (one per number): its draft, published version and history."""

    queryset = CallFlow.objects.select_related("number", "published")
    serializer_class = CallFlowSerializer
    filterset_fields = ["number"]

    def _version(self, flow, version_id):
        try:
            return flow.versions.get(pk=int(version_id))
        except (FlowVersion.DoesNotExist, TypeError, ValueError):
            raise ValidationError({"version": ["No such version of this flow."]}) from None

    @extend_schema(request=DraftSerializer, responses={200: DraftAnswerSerializer, 409: None})
    @action(detail=True, methods=["get", "put"], serializer_class=DraftSerializer)
    def draft(self, request, pk=None):
        """The draft (GET), or save a new one (PUT {revision, document}). A draft may have errors: they are in the
        answer, and publishing refuses them. A PUT from an older revision than the saved one is refused (409)."""
        flow = self.get_object()
        if request.method == "GET":
            return Response(draft_answer(flow, actions.validate_draft(flow)))
        return self._replace_draft(request, flow, actions.save_draft)

    def _replace_draft(self, request, flow, verb):
        """Answer a {revision, document} request by VERB (save_draft or import_flow)."""
        serializer = DraftSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            errors = verb(flow, serializer.validated_data["document"], serializer.validated_data["revision"], request.user)
        except actions.FlowError as exc:
            return refused(exc)
        return Response(draft_answer(flow, errors))

    @extend_schema(request=ValidateSerializer, responses=ValidationAnswerSerializer)
    @action(detail=True, methods=["post"], serializer_class=ValidateSerializer)
    def validate(self, request, pk=None):
        """Check a document (or the saved draft) without saving it."""
        flow = self.get_object()
        serializer = ValidateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data.get("document", flow.draft)
        errors = doc.validate(data, doc.Lookup.load(flow.account_id, flow.number, data))
        return Response({"valid": not errors, "errors": errors_data(errors)})

    @extend_schema(request=None, responses={201: FlowVersionSerializer, 400: None})
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        """Publish the draft: callers get it from their next call (calls under way keep their version)."""
        flow = self.get_object()
        try:
            version = actions.publish(flow, request.user)
        except actions.FlowError as exc:
            return refused(exc)
        return Response(FlowVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=FlowVersionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def versions(self, request, pk=None):
        """Every published version, newest first (the documents: flow-versions/{id}/)."""
        flow = self.get_object()
        return Response(FlowVersionSerializer(flow.versions.order_by("-number"), many=True).data)

    @extend_schema(request=RestoreSerializer, responses={200: DraftAnswerSerializer})
    @action(detail=True, methods=["post"], serializer_class=RestoreSerializer)
    def restore(self, request, pk=None):
        """Make a version the draft again (publish it to make it live)."""
        flow = self.get_object()
        serializer = RestoreSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = self._version(flow, serializer.validated_data["version"])
        try:
            errors = actions.restore(flow, version, request.user)
        except actions.FlowError as exc:
            return refused(exc)
        return Response(draft_answer(flow, errors))

    @extend_schema(
        parameters=[OpenApiParameter("version", int, description="A version's id (default: the draft).")],
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"], url_path="export", filter_backends=[])
    def export(self, request, pk=None):
        """The document as a file to keep or import elsewhere."""
        flow = self.get_object()
        version = self._version(flow, request.query_params["version"]) if "version" in request.query_params else None
        response = Response(actions.export_flow(flow, version))
        name = f"flow-{flow.number_id}" + (f"-v{version.number}" if version else "-draft")
        response["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return response

    @extend_schema(request=DraftSerializer, responses={200: DraftAnswerSerializer, 409: None})
    @action(detail=True, methods=["post"], url_path="import", serializer_class=DraftSerializer)
    def import_document(self, request, pk=None):
        """Replace the draft with an exported document ({revision, document}); ids of objects of another account
        show up as errors on their nodes."""
        return self._replace_draft(request, self.get_object(), actions.import_flow)

    @extend_schema(request=DryRunSerializer, responses={200: DryRunAnswerSerializer, 400: None})
    @action(detail=True, methods=["post"], url_path="dry-run", serializer_class=DryRunSerializer)
    def dry_run(self, request, pk=None):
        """Walk a call through the draft (or a version) at a time, from a caller, with scripted inputs: the path,
        what the caller hears at each node and who would be dialled in which order. No call is placed."""
        from ..flows import dryrun
        from ..flows.world import DatabaseWorld

        flow = self.get_object()
        serializer = DryRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = self._version(flow, data["version"]) if "version" in data else None
        document = version.document if version is not None else flow.draft
        parsed, errors = doc.parse(document)
        if parsed is None or errors:
            return Response({"detail": "The flow has errors: fix them before a dry run.", "errors": errors_data(errors)},
                            status=status.HTTP_400_BAD_REQUEST)
        at = data.get("at") or timezone.now()
        if timezone.is_naive(at):
            at = timezone.make_aware(at, dt.timezone.utc)
        run = dryrun.dry_run(parsed.data, at=at, caller=data["caller"], inputs=data["inputs"],
                             world=DatabaseWorld(flow.account_id), number_name=flow.number.name)
        return Response({"steps": run.steps, "ended": run.ended})


class FlowVersionViewSet(AccountViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Published versions of the account's flows, with their documents (immutable)."""

    queryset = FlowVersion.objects.all()
    serializer_class = FlowVersionDetailSerializer
    permission_classes = [AccountMember]
    filterset_fields = ["flow"]

    def get_queryset(self):
        return scoped(FlowVersion.objects.order_by("flow", "-number"), getattr(self.request.user, "account", None))
