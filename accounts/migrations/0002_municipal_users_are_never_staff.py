from django.db import migrations, models


def drop_staff_flags_of_municipal_users(apps, schema_editor):
    # The admin is the platform operators' tool from now on; a municipal account that had a staff
    # or superuser flag loses it, so that the constraint below can be added.
    User = apps.get_model("accounts", "User")
    User.objects.using(schema_editor.connection.alias).filter(municipality__isnull=False).filter(
        models.Q(is_staff=True) | models.Q(is_superuser=True)
    ).update(is_staff=False, is_superuser=False)
    # The history rows written by that update have deferred foreign-key checks; run them now, or
    # PostgreSQL refuses the ALTER TABLE below ("pending trigger events").
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_users_and_device_tokens"),
    ]

    operations = [
        migrations.RunPython(drop_staff_flags_of_municipal_users, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.CheckConstraint(
                condition=models.Q(("municipality__isnull", True), models.Q(("is_staff", False), ("is_superuser", False)), _connector="OR"),
                name="user_municipal_not_staff",
                violation_error_message="A user of a municipality cannot be staff or superuser.",
            ),
        ),
    ]
