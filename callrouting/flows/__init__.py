"""Call flows: every routing number runs a flow of nodes (menus, routes, voicemail, support hours, PIN, ...).

models      CallFlow (a number's draft and published version), FlowVersion (immutable), SupportCalendar
document    the flow document (JSON, schema 1): parse and validate, errors pinned to nodes
compiler    today's number settings -> a document (simple mode), and the recogniser is_simple()
actions     the verbs: save_draft, validate_draft, publish, restore, import/export, sync_simple_flow
cache       load_version(): published versions, cached per process (they never change)
"""
