"""Weekly ranges and holidays belong to support calendars only (0010 gave every number's rows a calendar)."""
import django.db.models.deletion
from django.db import migrations, models


def numbers_from_calendars(apps, schema_editor):
    # Backwards: each row goes back to the first number using its calendar (rows of calendars no number uses are
    # dropped: before calendars there was nowhere to keep them).
    RoutingNumber = apps.get_model("callrouting", "RoutingNumber")
    SupportHoursRange = apps.get_model("callrouting", "SupportHoursRange")
    Holiday = apps.get_model("callrouting", "Holiday")
    first_number = {}
    for number_id, calendar_id in RoutingNumber.objects.filter(support_calendar__isnull=False).order_by("pk").values_list(
        "pk", "support_calendar_id"
    ):
        first_number.setdefault(calendar_id, number_id)
    for model in (SupportHoursRange, Holiday):
        for calendar_id, number_id in first_number.items():
            model.objects.filter(calendar_id=calendar_id).update(routing_number_id=number_id)
        model.objects.filter(routing_number__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("callrouting", "0011_flows_from_number_settings")]

    operations = [
        migrations.AlterField(
            model_name="supporthoursrange", name="routing_number",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="support_ranges",
                                    to="callrouting.routingnumber"),
        ),
        migrations.AlterField(
            model_name="holiday", name="routing_number",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="holidays",
                                    to="callrouting.routingnumber"),
        ),
        migrations.RunPython(migrations.RunPython.noop, numbers_from_calendars),
        migrations.RemoveConstraint(model_name="holiday", name="unique_holiday_date"),
        migrations.AlterModelOptions(name="holiday", options={"ordering": ["calendar", "date"]}),
        migrations.AlterModelOptions(name="supporthoursrange", options={"ordering": ["calendar", "weekday", "start"]}),
        migrations.RemoveField(model_name="holiday", name="routing_number"),
        migrations.RemoveField(model_name="supporthoursrange", name="routing_number"),
        migrations.AlterField(
            model_name="holiday", name="calendar",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="holidays",
                                    to="callrouting.supportcalendar"),
        ),
        migrations.AlterField(
            model_name="supporthoursrange", name="calendar",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="ranges",
                                    to="callrouting.supportcalendar"),
        ),
        migrations.AddConstraint(
            model_name="holiday",
            constraint=models.UniqueConstraint(fields=("calendar", "date"), name="unique_calendar_holiday_date"),
        ),
    ]
