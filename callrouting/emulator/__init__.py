"""A local phone network that speaks the Vonage protocol (issue #5).

It serves the part of the Vonage REST API the product uses (rest.py), executes NCCOs on simulated call legs and
drives the product's webhooks like Vonage, signed (engine.py), and offers a control API to place calls and act as
callers and agents (control.py), used by the Test call page, `manage.py simulate_call` and the end-to-end tests
(script.py). It talks to the product only over HTTP and imports nothing from the product's apps.
"""
