"""URLs of the settings pages, included at the root by callrouting/urls.py (before incidents.urls, whose
/incidents/<pk> link and /incidents/voice/... webhooks share the /incidents/ prefix without clashing).

Every id in a path is named <model>_pk: the isolation tests fill them with another account's rows."""
from django.urls import path

from . import calls, flows, incidents, lookup, numbers, people, policies, schedules, tokens

app_name = "web"

urlpatterns = [
    path("", calls.home, name="home"),
    path("settings/api-tokens/", tokens.api_tokens, name="api-tokens"),
    # The searchable inputs' suggestions (people, schedules, policies, time zones).
    *[path(f"lookup/{kind}/", lookup.lookup, {"kind": kind}, name=f"lookup-{kind}") for kind in lookup.LISTS],
    path("settings/api-tokens/<int:token_pk>/revoke/", tokens.api_token_revoke, name="api-token-revoke"),
    # Routing numbers: one POST URL per section of the number's page.
    path("numbers/", numbers.number_list, name="numbers"),
    path("numbers/<int:number_pk>/", numbers.number_detail, name="number"),
    path("numbers/<int:number_pk>/preview/", numbers.number_preview, name="number-preview"),
    path("numbers/<int:number_pk>/on-call/", numbers.number_on_call, name="number-on-call"),
    *[
        path(f"numbers/<int:number_pk>/{section.slug}/", numbers.number_section, {"section": section.slug},
             name=f"number-{section.slug}")
        for section in numbers.SECTIONS
    ],
    path("numbers/<int:number_pk>/options/<int:option_pk>/move/", numbers.option_move, name="option-move"),
    path("numbers/<int:number_pk>/options/<int:option_pk>/delete/", numbers.option_delete, name="option-delete"),
    path("numbers/<int:number_pk>/actions/<int:action_pk>/delete/", numbers.action_delete, name="action-delete"),
    # A number's call flow: the editor (every change posts to flow-edit), publishing, versions, the dry run.
    path("numbers/<int:number_pk>/flow/", flows.flow_editor, name="flow-editor"),
    path("numbers/<int:number_pk>/flow/edit/", flows.flow_edit, name="flow-edit"),
    path("numbers/<int:number_pk>/flow/delete/", flows.flow_delete, name="flow-delete"),
    path("numbers/<int:number_pk>/flow/publish/", flows.flow_publish, name="flow-publish"),
    path("numbers/<int:number_pk>/flow/versions/", flows.flow_versions, name="flow-versions"),
    path("numbers/<int:number_pk>/flow/restore/", flows.flow_restore, name="flow-restore"),
    path("numbers/<int:number_pk>/flow/dry-run/", flows.flow_dry_run, name="flow-dry-run"),
    # Incidents and the call log.
    path("incidents/", incidents.incident_list, name="incidents"),
    path("incidents/<int:incident_pk>/", incidents.incident_detail, name="incident"),
    path("incidents/<int:incident_pk>/accept/", incidents.incident_accept, name="incident-accept"),
    path("incidents/<int:incident_pk>/resolve/", incidents.incident_resolve, name="incident-resolve"),
    path("calls/", calls.call_list, name="calls"),
    path("calls/<int:call_pk>/", calls.call_detail, name="call"),
    path("calls/<int:call_pk>/voicemail.mp3", calls.call_voicemail, name="call-voicemail"),
    # Escalation policies.
    path("policies/", policies.policy_list, name="policies"),
    path("policies/new/", policies.policy_new, name="policy-new"),
    path("policies/<int:policy_pk>/", policies.policy_detail, name="policy"),
    path("policies/<int:policy_pk>/delete/", policies.policy_delete, name="policy-delete"),
    path("policies/<int:policy_pk>/rules/new/", policies.rule_new, name="rule-new"),
    path("policies/<int:policy_pk>/rules/<int:rule_pk>/", policies.rule_detail, name="rule"),
    path("policies/<int:policy_pk>/rules/<int:rule_pk>/delete/", policies.rule_delete, name="rule-delete"),
    # People: the account's people (owners and admins) and everyone's own contact methods.
    path("people/", people.person_list, name="people"),
    path("people/new/", people.person_new, name="person-new"),
    path("me/", people.my_contact_methods, name="me"),
    path("people/<int:user_pk>/", people.person_detail, name="person"),
    path("people/<int:user_pk>/role/", people.person_role, name="person-role"),
    path("people/<int:user_pk>/invite/", people.person_invite, name="person-invite"),
    path("people/<int:user_pk>/deactivate/", people.person_deactivate, name="person-deactivate"),
    path("people/<int:user_pk>/reactivate/", people.person_reactivate, name="person-reactivate"),
    path("people/<int:user_pk>/contact-methods/", people.contact_method_new, name="contact-method-new"),
    path("people/<int:user_pk>/contact-methods/<int:contact_method_pk>/", people.contact_method_detail,
         name="contact-method"),
    path("people/<int:user_pk>/contact-methods/<int:contact_method_pk>/delete/", people.contact_method_delete,
         name="contact-method-delete"),
    path("people/<int:user_pk>/contact-methods/<int:contact_method_pk>/test-call/", people.contact_method_test_call,
         name="contact-method-test-call"),
    path("people/<int:user_pk>/contact-methods/<int:contact_method_pk>/test-sms/", people.contact_method_test_sms,
         name="contact-method-test-sms"),
    path("people/<int:user_pk>/notification-rules/", people.notification_rule_new, name="notification-rule-new"),
    path("people/<int:user_pk>/notification-rules/<int:notification_rule_pk>/delete/", people.notification_rule_delete,
         name="notification-rule-delete"),
    # On-call schedules.
    path("schedules/", schedules.schedule_list, name="schedules"),
    path("schedules/new/", schedules.schedule_new, name="schedule-new"),
    path("schedules/<int:schedule_pk>/", schedules.schedule_detail, name="schedule"),
    path("schedules/<int:schedule_pk>/delete/", schedules.schedule_delete, name="schedule-delete"),
    path("schedules/<int:schedule_pk>/layers/new/", schedules.layer_new, name="layer-new"),
    path("schedules/<int:schedule_pk>/layers/<int:layer_pk>/", schedules.layer_detail, name="layer"),
    path("schedules/<int:schedule_pk>/layers/<int:layer_pk>/delete/", schedules.layer_delete, name="layer-delete"),
    path("schedules/<int:schedule_pk>/overrides/new/", schedules.override_new, name="override-new"),
    path("schedules/<int:schedule_pk>/overrides/<int:override_pk>/delete/", schedules.override_delete,
         name="override-delete"),
]
