"""Every number runs a flow: its settings compiled (callrouting.flows.compiler, a pure function of plain values)
into the flow's published version 1, which is also its draft."""
from django.db import migrations

FIRST_SUMMARY = "Version 1: compiled from the number's settings."


def flows_from_settings(apps, schema_editor):
    from callrouting.flows import compiler, document

    RoutingNumber = apps.get_model("callrouting", "RoutingNumber")
    CallFlow = apps.get_model("callrouting", "CallFlow")
    FlowVersion = apps.get_model("callrouting", "FlowVersion")
    numbers = RoutingNumber.objects.filter(flow__isnull=True).select_related("alert_source").order_by("pk")
    for number in numbers:
        data = compiler.compile_number(number)
        parsed, _ = document.parse(data)
        data = parsed.data if parsed is not None else data
        flow = CallFlow.objects.create(account_id=number.account_id, number=number, draft=data, draft_revision=1)
        version = FlowVersion.objects.create(flow=flow, number=1, document=data, summary=FIRST_SUMMARY)
        CallFlow.objects.filter(pk=flow.pk).update(published=version)


def drop_flows(apps, schema_editor):
    apps.get_model("callrouting", "CallFlow").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("callrouting", "0010_support_calendars_from_numbers")]

    operations = [migrations.RunPython(flows_from_settings, drop_flows)]
