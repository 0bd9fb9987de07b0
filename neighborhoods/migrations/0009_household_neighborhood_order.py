"""A 自治会's households in external_id order from one index (issue 15): the (municipality, 自治会)
index gains external_id, so a 自治会's list and a worker's first page per 自治会
(neighborhoods.queries.first_by_neighborhood) read a range instead of sorting. The new index is
made before the old one goes."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('neighborhoods', '0008_stored_possible_duplicates'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='household',
            index=models.Index(fields=['municipality', 'neighborhood', 'external_id'], name='household_neighborhood_order'),
        ),
        migrations.RemoveIndex(
            model_name='household',
            name='household_neighborhood',
        ),
    ]
