"""What Vonage accepts: NCCOs and create-call bodies checked against the Vonage SDK's own pydantic models.

The SDK's models ignore fields they do not know, and Vonage does not run what it cannot read, so here an unknown
field is an error, except the few documented ones the models drop (DOCUMENTED_EXTRAS, checked with their own
strict models). JSON names are the wire names: `from` (the models call it `from_`), `dtmfAnswer` in a
create-call `to`. A talk text longer than 1,500 characters is refused too (the SDK's Talk model says so; Vonage
itself would cut the text, dropping the end of a menu without a word).

`ncco_problems(ncco)` and `create_call_problems(body)` return a list of problems, each {"name", "reason"} (the
shape of Vonage's `invalid_parameters`); an empty list means valid.
"""
import typing
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from vonage_utils.errors import VonageError
from vonage_voice.models.ncco import Connect, Conversation, Input, Notify, Record, Stream, Talk, Transfer, Wait
from vonage_voice.models.requests import CreateCallRequest

ACTIONS = {model.model_fields["action"].default.value: model
           for model in (Record, Conversation, Connect, Talk, Stream, Input, Notify, Wait, Transfer)}
# The actions a create-call body may carry inline (the SDK's CreateCallRequest.ncco).
CREATE_CALL_ACTIONS = {"record", "conversation", "connect", "input", "talk", "stream", "notify"}
TALK_LIMIT = Talk.model_fields["text"].metadata[0].max_length


class _Transcription(BaseModel):
    """record.transcription, as the NCCO reference documents it ({} turns transcription on with defaults)."""

    model_config = ConfigDict(extra="forbid")
    language: Optional[str] = None
    eventUrl: Optional[list[str]] = None
    eventMethod: Optional[str] = None
    sentimentAnalysis: Optional[bool] = None


# (model, JSON field) -> validator of a documented field the SDK's model drops.
DOCUMENTED_EXTRAS = {
    (Record, "transcription"): TypeAdapter(_Transcription),
    (Input, "mode"): TypeAdapter(Literal["synchronous", "asynchronous"]),
}


def ncco_problems(ncco, *, name="ncco", actions=ACTIONS):
    """The problems of NCCO (the decoded JSON of an NCCO); [] when Vonage would run it."""
    if not isinstance(ncco, list):
        return [{"name": name, "reason": "an NCCO is a JSON array of actions"}]
    problems = []
    for index, action in enumerate(ncco):
        where = f"{name}[{index}]"
        kind = action.get("action") if isinstance(action, dict) else None
        if kind not in actions:
            problems.append({"name": f"{where}.action",
                             "reason": f"unknown action {kind!r}: one of {', '.join(sorted(actions))}"})
            continue
        problems += _model_problems(actions[kind], action, where)
    return problems


def create_call_problems(body):
    """The problems of a POST /v1/calls body; [] when Vonage would place the call."""
    if not isinstance(body, dict):
        return [{"name": "body", "reason": "a JSON object is required"}]
    inline = "ncco" in body
    # The inline NCCO is checked action by action below (the SDK's union of actions cannot name the action).
    problems = _model_problems(CreateCallRequest, {**body, "ncco": []} if inline else body, "")
    if inline:
        problems += ncco_problems(body["ncco"], actions={kind: ACTIONS[kind] for kind in CREATE_CALL_ACTIONS})
    return problems


def _model_problems(model, data, where):
    problems = []
    conformed = _conform(model, data, where, problems)
    try:
        model.model_validate(conformed)
    except ValidationError as exc:
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"])
            problems.append({"name": _join(where, location) or "body", "reason": error["msg"]})
    except VonageError as exc:  # the models' own cross-field checks (e.g. connect without from)
        problems.append({"name": where or "body", "reason": str(exc)})
    return problems


def _join(where, name):
    return f"{where}.{name}" if where and name else where or name


def _conform(model, data, where, problems):
    """DATA with wire names turned into MODEL's field names (nested models too); unknown fields go to PROBLEMS."""
    if not isinstance(data, dict):
        return data  # the model reports the wrong type
    fields = {field.serialization_alias or name: name for name, field in model.model_fields.items()}
    conformed = {}
    for key, value in data.items():
        location = _join(where, key)
        if key in fields:
            name = fields[key]
            conformed[name] = _conform_value(model.model_fields[name].annotation, value, location, problems)
        elif (model, key) in DOCUMENTED_EXTRAS:
            try:
                DOCUMENTED_EXTRAS[model, key].validate_python(value)
            except ValidationError as exc:
                problems += [{"name": _join(location, ".".join(str(part) for part in error["loc"])),
                              "reason": error["msg"]} for error in exc.errors()]
        else:
            problems.append({"name": location, "reason": "unknown field"})
    return conformed


def _conform_value(annotation, value, where, problems):
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        models = [arg for arg in typing.get_args(annotation) if _is_model(arg)]
        lists = [arg for arg in typing.get_args(annotation) if typing.get_origin(arg) is list]
        if isinstance(value, dict) and models:
            return _conform(_pick(models, value), value, where, problems)
        if isinstance(value, list) and lists:
            return _conform_value(lists[0], value, where, problems)
        return value
    if origin is list and isinstance(value, list):
        (item,) = typing.get_args(annotation) or (None,)
        return [_conform_value(item, element, f"{where}[{index}]", problems) for index, element in enumerate(value)]
    if _is_model(annotation):
        return _conform(annotation, value, where, problems)
    return value


def _is_model(annotation):
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _pick(models, value):
    """The member of a union of models that VALUE's discriminator (`type`) names; the first one without it."""
    if len(models) == 1 or "type" not in value:
        return models[0]
    for model in models:
        default = model.model_fields["type"].default if "type" in model.model_fields else None
        if getattr(default, "value", default) == value["type"]:
            return model
    return models[0]  # an unknown type: the model reports it
