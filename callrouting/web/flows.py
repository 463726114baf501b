"""The flow pages of a number: the editor (the draft as a tree of cards), publishing and versions, the dry run.

Every change is one POST to `flow_edit` naming an operation (add, configure, move, copy, delete, template) and
the draft revision the page showed; flows.actions.save_draft refuses it when another save came first, and the
page says so with a link to reload. The tree is built by flows/editing.py from the draft document; validation
errors (flows/document.py) are shown on the node they concern, and Publish is refused while any remain.
The page makes the same number of queries whatever the flow's size: the account objects the nodes name are
loaded once per kind.
"""
from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from incidents.models import AlertSource

from ..flows import actions, document as flow_document, dryrun, editing, starters
from ..flows.world import DatabaseWorld
from ..flows.models import CallFlow, FlowVersion, SupportCalendar
from ..models import NumberAudio, RoutingNumber
from ..tenancy import get_scoped_or_404, scoped
from . import flow_forms
from .access import account_view, require_admin
from .common import not_allowed

OPERATIONS = ("add", "configure", "move", "copy", "delete", "template")


class Conflict(Exception):
    """The draft changed since the page was shown (another admin, or another tab, saved first)."""


# --- Loading -------------------------------------------------------------------------------------------------


def _number(request, number_pk):
    return get_scoped_or_404(RoutingNumber.objects.select_related("alert_source"), request.account, pk=number_pk)


def _flow(number):
    """NUMBER's CallFlow with its published version: one query (a number without one gets it from its settings)."""
    flow = CallFlow.objects.select_related("published", "published__published_by", "updated_by").filter(number=number).first()
    return flow or actions.flow_of(number)


def _draft(number, flow):
    """The draft document; a flow never edited starts from the published version, or from nothing."""
    if flow.draft and isinstance(flow.draft, dict):
        return flow.draft
    if flow.published_id:
        return flow.published.document
    return editing.empty_document(number.language)


def _choices(request, number):
    return flow_forms.Choices(
        account=request.account,
        audio=[(a.pk, f"{a.get_kind_display()}: {a.original_name or a.pk}") for a in NumberAudio.objects.filter(routing_number=number)],
        calendars=[(c.pk, str(c)) for c in scoped(SupportCalendar, request.account).order_by("name", "pk")],
        alert_sources=[(s.pk, str(s)) for s in scoped(AlertSource, request.account)],
    )


def _check(number, data):
    """(the parsed document or None, {node id: [messages]}, [messages about the flow as a whole]) of DATA."""
    parsed, errors = flow_document.parse(data, flow_document.Lookup.load(number.account, number, data))
    by_node, general = {}, []
    for error in errors:
        where = f"{error.field}: " if error.field and error.node_id else ""
        if error.node_id and error.node_id in (data.get("nodes") or {}):
            by_node.setdefault(error.node_id, []).append(f"{where}{error.message}")
        else:
            general.append(f"{error.field + ': ' if error.field else ''}{error.message}")
    return parsed, by_node, general


# --- The editor ----------------------------------------------------------------------------------------------


def _editor_context(request, number, flow, *, data=None, bound=None, conflict=False, lit=(), at=None):
    """The editor's template context for the document DATA (default: the draft); BOUND = (node id, bound form) of
    a configure form that failed; LIT = node ids of a dry run's path."""
    draft = _draft(number, flow)
    data = draft if data is None else data
    tree = editing.build_tree(data)
    parsed, by_node, general = _check(number, data)
    choices = _choices(request, number)
    labels = flow_forms.target_labels(request.account, [data])
    forms_by_node = {}
    for node_id, card in tree.cards.items():
        if bound and bound[0] == node_id:
            forms_by_node[node_id] = bound[1]
        else:
            forms_by_node[node_id] = flow_forms.node_form(node_id, card.node, choices)
    calling = _who_would_be_called(number, parsed, at or timezone.now())
    calendars = dict(choices.calendars)
    for node_id, card in tree.cards.items():
        card.problems = by_node.get(node_id, [])
        card.form = forms_by_node[node_id]
        card.summary = flow_forms.summary(card.node, labels, calendars)
        card.calling = calling.get(node_id, [])
        if card.kind == "route":
            card.targets = [flow_forms.describe_target(t, labels) for t in card.node.get("targets") or []]
            if card.form is not None:
                card.target_rows = card.form.target_rows(labels)
        card.step = ", ".join(str(i + 1) for i, step_node in enumerate(lit) if step_node == node_id)
        for branch in card.branches:
            _decorate(branch, tree)
    _decorate(tree.root, tree)
    empty = [(editing.position_value(position), label) for position, label in tree.positions()
             if editing.get_target(data, position) is None]
    return {
        "number": number, "flow": flow, "tree": tree, "errors": by_node, "general_errors": general,
        "error_count": sum(map(len, by_node.values())) + len(general),
        "empty_positions": empty,
        "kinds": list(editing.KINDS.items()), "templates": starters.TEMPLATES, "conflict": conflict,
        "lit": set(lit), "editable": request.can_edit and data is draft,
        "now": timezone.now(),
    }


def _decorate(branch, tree):
    branch.position_value = editing.position_value(branch.position)
    if branch.goto:
        branch.goto_name = tree.cards[branch.goto].name


def _who_would_be_called(number, parsed, at):
    """{route node id: [DialTarget]} for every route node of PARSED (a FlowDocument) at AT, from the engine's own
    code (nothing for a document that cannot be read yet: its errors are shown instead)."""
    if parsed is None:
        return {}
    routes = {node_id: node for node_id, node in parsed.data["nodes"].items() if node["kind"] == "route"}
    if not routes:
        return {}
    world = DatabaseWorld(number.account_id)
    world.prefetch([target for node in routes.values() for target in node["targets"]], at)  # all routes at once
    return {node_id: dryrun.who_would_be_called(parsed.data, node_id, at, world) for node_id in routes}


@account_view
def flow_editor(request, number_pk):
    number = _number(request, number_pk)
    if refused := not_allowed(request, "GET"):
        return refused
    flow = _flow(number)
    return render(request, "web/flows/editor.html", _editor_context(request, number, flow))


@account_view
def flow_edit(request, number_pk):
    """POST one change of the draft (see OPERATIONS); back to the editor at the node changed."""
    number = _number(request, number_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    require_admin(request)
    flow, revision = _flow(number), _revision(request)
    operation = request.POST.get("op", "")
    if operation not in OPERATIONS:
        messages.error(request, "Unknown change: reload the page and try again.")
        return redirect(_editor_url(number))
    try:
        if revision != flow.draft_revision:
            raise Conflict
        result = _apply(request, number, flow, operation)
        if isinstance(result, tuple) and result[0] == "invalid":
            _, node_id, form = result
            context = _editor_context(request, number, flow, bound=(node_id, form))
            return render(request, "web/flows/editor.html", context, status=400)
        data, focus, message = result
        _save(flow, data, revision, request.user)
    except Conflict:
        context = _editor_context(request, number, _flow(number), conflict=True)
        return render(request, "web/flows/editor.html", context, status=409)
    except editing.EditError as exc:
        messages.error(request, str(exc))
        return redirect(_editor_url(number))
    messages.success(request, message)
    return redirect(_editor_url(number, focus))


def _revision(request):
    """The draft revision the posting page showed (-1 when missing: refused as stale)."""
    try:
        return int(request.POST.get("revision", ""))
    except ValueError:
        return -1


def _save(flow, data, revision, user):
    try:
        actions.save_draft(flow, data, revision=revision, user=user)
    except actions.StaleDraft as exc:
        raise Conflict from exc


def _editor_url(number, node_id=None):
    return reverse("web:flow-editor", args=[number.pk]) + (f"#node-{node_id}" if node_id else "")


def _apply(request, number, flow, operation):
    """(new document, node id to show, message), or ("invalid", node id, bound form)."""
    post, data = request.POST, _draft(number, flow)
    if operation == "add":
        kind = post.get("kind", "")
        if kind not in editing.KINDS:
            raise editing.EditError("Choose a kind of node to add.")
        data, node_id = editing.add_node(data, editing.parse_position(post.get("at")), kind)
        return data, node_id, f"Added “{editing.KINDS[kind]}”: configure it below."
    if operation == "template":
        name = post.get("template", "")
        if name not in starters.TEMPLATES:
            raise editing.EditError("Choose a template.")
        return starters.build(name, number), None, f"The draft is now the “{starters.TEMPLATES[name]}” template."
    node_id = post.get("node", "")
    node = (data.get("nodes") or {}).get(node_id)
    if node is None:
        raise editing.EditError("That node is no longer in the draft: reload the page.")
    name = node.get("name") or node_id
    if operation == "configure":
        form = flow_forms.node_form(node_id, node, _choices(request, number), post)
        if form is None or not form.is_valid():
            return "invalid", node_id, form
        return editing.replace_node(data, node_id, form.changed_node()), node_id, f"Saved “{form.cleaned_data['name']}”."
    if operation == "move":
        source = editing.build_tree(data).cards[node_id].position
        if source is None:
            raise editing.EditError("A node that is not reachable has no branch to move from: copy it instead.")
        destination = editing.parse_position(post.get("to"))
        return editing.move_subtree(data, node_id, source, destination), node_id, f"Moved “{name}”."
    if operation == "copy":
        data, copy_id = editing.copy_subtree(data, node_id, editing.parse_position(post.get("to")))
        return data, copy_id, f"Copied “{name}”."
    # delete: only from the confirmation page, which posts confirmed=yes
    if post.get("confirmed") != "yes":
        raise editing.EditError("Deleting needs a confirmation.")
    parent = editing.build_tree(data).cards[node_id].position
    return (editing.delete_subtree(data, node_id), parent[0] if parent else None,
            f"Deleted “{name}” and the nodes below it.")


@account_view
def flow_delete(request, number_pk):
    """GET: what deleting ?node= would remove (the node, its subtree, and branches elsewhere that lose their target),
    with the form that confirms it (posting to flow_edit)."""
    number = _number(request, number_pk)
    if refused := not_allowed(request, "GET"):
        return refused
    require_admin(request)
    flow = _flow(number)
    node_id = request.GET.get("node", "")
    try:
        draft = _draft(number, flow)
        removed, cut = editing.deletion(draft, node_id)
    except editing.EditError as exc:
        messages.error(request, str(exc))
        return redirect(_editor_url(number))
    nodes = draft["nodes"]
    return render(request, "web/flows/delete.html", {
        "number": number, "flow": flow, "node_id": node_id, "node": nodes[node_id],
        "removed": [nodes[n].get("name") or n for n in removed], "cut": [label for _, label in cut],
    })


# --- Publish and versions -----------------------------------------------------------------------------------


@account_view
def flow_publish(request, number_pk):
    number = _number(request, number_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    require_admin(request)
    flow, revision = _flow(number), _revision(request)
    if revision != flow.draft_revision:
        context = _editor_context(request, number, flow, conflict=True)
        return render(request, "web/flows/editor.html", context, status=409)
    try:
        version = actions.publish(flow, user=request.user)
    except actions.InvalidFlow as exc:
        count = len(exc.errors)
        messages.error(request, f"Not published: the draft has {count} problem{'s' if count != 1 else ''} to fix first (marked below).")
        return redirect(_editor_url(number))
    messages.success(request, f"Published version {version.number}: callers get it from now on.")
    return redirect(reverse("web:flow-versions", args=[number.pk]))


@account_view
def flow_versions(request, number_pk):
    number = _number(request, number_pk)
    if refused := not_allowed(request, "GET"):
        return refused
    flow = _flow(number)
    versions = FlowVersion.objects.filter(flow=flow, test_call=False).select_related("published_by").order_by("-number")[:100]
    return render(request, "web/flows/versions.html", {"number": number, "flow": flow, "versions": versions})


@account_view
def flow_restore(request, number_pk):
    number = _number(request, number_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    require_admin(request)
    flow = _flow(number)
    version = FlowVersion.objects.filter(flow=flow, test_call=False, pk=request.POST.get("version") or 0).first()
    if version is None:
        raise Http404("No such version of this flow.")
    revision = _revision(request)
    try:
        if revision != flow.draft_revision:
            raise Conflict
        actions.restore(flow, version, user=request.user)
    except (Conflict, actions.StaleDraft):
        messages.error(request, "The draft changed since you opened this page: nothing was restored. Check the "
                                "draft, then restore again if you still want to.")
        return redirect(reverse("web:flow-versions", args=[number.pk]))
    messages.success(request, f"Version {version.number} is now the draft: publish it to make it live.")
    return redirect(_editor_url(number))


# --- Dry run -------------------------------------------------------------------------------------------------


# What the admin types -> the dry run's scripted inputs (flows.dryrun): keys as they are.
SCRIPT_WORDS = {"nobody": "nobody_answers", "nobody answers": "nobody_answers", "no answer": "nobody_answers",
                "answer": "answers", "answers": "answers", "answered": "answers", "silence": "silence",
                "no input": "silence", "nothing": "silence"}


def script_input(text):
    text = " ".join(text.split())
    lowered = text.lower()
    if lowered in SCRIPT_WORDS:
        return SCRIPT_WORDS[lowered]
    for prefix in ("say", "pin"):
        if lowered.startswith(prefix + " ") or lowered.startswith(prefix + ":"):
            return f"{prefix}:{text[len(prefix) + 1:].strip()}"
    return text.replace(" ", "")


EVENT_NAMES = {"call": "The call comes in", "nobody_answers": "Nobody answers", "answers": "An agent answers",
               "silence": "The caller does nothing"}


def _steps(run, data):
    """The dry run as the page shows it: one row per node visited, named as in the editor."""
    nodes = data.get("nodes") or {}
    rows, previous = [], None
    for step in run.steps:
        event = step["event"]
        if event == previous:
            event = ""
        else:
            previous = event
            event = EVENT_NAMES.get(event) or (f"The caller says “{event[4:]}”" if event.startswith("say:") else
                                               f"The caller enters PIN {event[4:]}" if event.startswith("pin:") else
                                               f"The caller presses {event}")
        node = nodes.get(step["node"]) or {}
        rows.append({
            "node": step["node"], "name": node.get("name") or step["node"], "kind": step["kind"],
            "kind_label": "ignored: nothing happens" if step["kind"] == "ignored" else editing.KINDS.get(step["kind"], step["kind"]),
            "event": event, "hears": " ".join(step["hears"]), "branch": step.get("branch", ""),
            "dialled": [label for round_ in step["dials"] for label in round_],
        })
    ending = "The call ends." if run.ended else f"The call waits at “{(nodes.get(run.state.node) or {}).get('name', run.state.node)}”."
    return {"steps": rows, "outcome": ending}


class DryRunForm(forms.Form):
    version = forms.ChoiceField(label="Flow", required=False)
    when = forms.DateTimeField(
        required=False, label="Time of the call", input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Empty: now. In the account's time zone.",
    )
    caller = forms.CharField(required=False, max_length=32, label="Caller number",
                             help_text="Empty: an anonymous caller.")
    inputs = forms.CharField(
        required=False, max_length=500, label="What the caller does",
        help_text="In order, separated by commas: keys (1), words (say billing), a PIN (pin 1234), "
                  "“silence”, “nobody” (nobody answers a route), “answer” (an agent answers).",
    )

    def __init__(self, data=None, *, versions):
        super().__init__(data)
        self.fields["version"].choices = [("draft", "The draft"), *[(str(v.pk), f"Version {v.number}") for v in versions]]


@account_view
def flow_dry_run(request, number_pk):
    """GET with the form's fields: the path of a call through the draft or a version, what the caller hears at
    each step and who would be dialled in order; the same engine code as live calls, no call placed."""
    number = _number(request, number_pk)
    if refused := not_allowed(request, "GET"):
        return refused
    flow = _flow(number)
    versions = list(FlowVersion.objects.filter(flow=flow, test_call=False).order_by("-number")[:50])
    form = DryRunForm(request.GET or None, versions=versions)
    result, data, label, at = None, _draft(number, flow), "the draft", None
    if form.is_bound and form.is_valid():
        chosen = form.cleaned_data["version"] or "draft"
        if chosen != "draft":  # one of VERSIONS: the field offers only those
            version = next(v for v in versions if str(v.pk) == chosen)
            data, label = version.document, f"version {version.number}"
        at = form.cleaned_data["when"] or timezone.now()
        if timezone.is_naive(at):
            at = timezone.make_aware(at)
        inputs = [script_input(item) for item in form.cleaned_data["inputs"].split(",") if item.strip()]
        parsed, _ = flow_document.parse(data)
        if parsed is None:
            result = {"steps": [], "outcome": "", "unreadable": True}
        else:
            audio = {a.pk: a.original_name or a.get_kind_display() for a in NumberAudio.objects.filter(routing_number=number)}
            world = DatabaseWorld(number.account_id, audio_names=audio)
            run = dryrun.dry_run(parsed.data, at=at, caller=form.cleaned_data["caller"].strip(), inputs=inputs,
                                 world=world, number_name=number.name)
            result = _steps(run, parsed.data)
    lit = [step["node"] for step in result["steps"] if step["kind"] != "ignored"] if result else []
    context = _editor_context(request, number, flow, data=data, lit=lit, at=at)
    context.update({"form": form, "result": result, "label": label, "versions": versions, "editable": False})
    return render(request, "web/flows/dry_run.html", context)

