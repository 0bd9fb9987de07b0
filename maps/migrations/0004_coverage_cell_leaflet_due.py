"""Coverage cells keep leaflet_due, for campaign progress read from the snapshot. Snapshots made
before have none: marking them computed from no version makes the next read refresh them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("maps", "0003_tile_cache"),
    ]

    operations = [
        migrations.AddField(
            model_name="coveragecell",
            name="leaflet_due",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunSQL("UPDATE maps_coveragerefresh SET source_version = '', requested_version = ''", migrations.RunSQL.noop),
    ]
