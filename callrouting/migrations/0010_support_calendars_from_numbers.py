"""Support hours move onto calendars: one calendar per number that has support hours (on, or ranges or holidays
kept while off), holding that number's ranges and holidays, in its time zone."""
from django.db import migrations


def calendars_from_numbers(apps, schema_editor):
    RoutingNumber = apps.get_model("callrouting", "RoutingNumber")
    SupportCalendar = apps.get_model("callrouting", "SupportCalendar")
    SupportHoursRange = apps.get_model("callrouting", "SupportHoursRange")
    Holiday = apps.get_model("callrouting", "Holiday")
    with_rows = set(SupportHoursRange.objects.values_list("routing_number_id", flat=True))
    with_rows |= set(Holiday.objects.values_list("routing_number_id", flat=True))
    for number in RoutingNumber.objects.filter(support_calendar__isnull=True).order_by("pk"):
        if not number.support_hours_enabled and number.pk not in with_rows:
            continue
        calendar = SupportCalendar.objects.create(
            account_id=number.account_id, name=f"{number.name} support hours"[:200], timezone=number.timezone or "UTC"
        )
        SupportHoursRange.objects.filter(routing_number_id=number.pk).update(calendar=calendar)
        Holiday.objects.filter(routing_number_id=number.pk).update(calendar=calendar)
        RoutingNumber.objects.filter(pk=number.pk).update(support_calendar=calendar)


def numbers_keep_their_rows(apps, schema_editor):
    # The ranges and holidays still name their number: dropping the calendars (not their rows) is enough.
    SupportCalendar = apps.get_model("callrouting", "SupportCalendar")
    SupportHoursRange = apps.get_model("callrouting", "SupportHoursRange")
    Holiday = apps.get_model("callrouting", "Holiday")
    SupportHoursRange.objects.update(calendar=None)
    Holiday.objects.update(calendar=None)
    SupportCalendar.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("callrouting", "0009_flows_and_calendars")]

    operations = [migrations.RunPython(calendars_from_numbers, numbers_keep_their_rows)]
