"""The daily django-q2 schedule of the retention purge (保存年限, backend/retention.py): 03:30 JST,
before the overdue sweep (05:00). Kept here rather than in audit/, whose migrations change often."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.db import migrations

NAME = "retention-daily-purge"


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    tokyo = ZoneInfo("Asia/Tokyo")
    tomorrow = dt.datetime.now(tokyo).date() + dt.timedelta(days=1)
    Schedule.objects.using(schema_editor.connection.alias).update_or_create(
        name=NAME,
        defaults={
            "func": "audit.tasks.retention_daily_task",
            "schedule_type": "D",
            "repeats": -1,
            "next_run": dt.datetime.combine(tomorrow, dt.time(3, 30), tzinfo=tokyo),
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("outreach", "0003_history_without_change_seq"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
