"""The daily django-q2 schedule that marks overdue cases and 見守り (05:00 JST)."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.db import migrations

NAME = "outreach-overdue-sweep"


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    tomorrow = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date() + dt.timedelta(days=1)
    Schedule.objects.using(schema_editor.connection.alias).update_or_create(
        name=NAME,
        defaults={
            "func": "outreach.tasks.sweep_overdue_task",
            "schedule_type": "D",
            "repeats": -1,
            "next_run": dt.datetime.combine(tomorrow, dt.time(5, 0), tzinfo=ZoneInfo("Asia/Tokyo")),
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("outreach", "0001_meetings_concerns_and_cases"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
