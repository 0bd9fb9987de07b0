"""A campaign's coverage summed per refresh (maps.models.CoverageSummary, CoverageWeekTotal) and an
index reading a campaign's cells in target order (issue 15: requests that summed or sorted a city's
3,000 cells). Snapshots made before this migration have no sums: they are marked out of date, so
the next read or the periodic sweep refreshes them; until then the reads sum the cells (the
fallback maps.queries keeps for filtered reads)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('maps', '0004_coverage_cell_leaflet_due'),
        ('neighborhoods', '0007_household_tally'),
        ('visits', '0008_campaignhousehold_finished_at'),
    ]

    operations = [
        migrations.CreateModel(
            name='CoverageSummary',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('grouping', models.CharField(choices=[('all', '全体'), ('partner', '法人別'), ('district', '地区別'), ('daily_life_area', '日常生活圏域別')], max_length=20)),
                ('key', models.BigIntegerField(blank=True, null=True)),
                ('position', models.PositiveIntegerField(default=0, help_text='The first position of its cells in the campaign')),
                ('in_scope', models.PositiveIntegerField(default=0)),
                ('met', models.PositiveIntegerField(default=0)),
                ('refused', models.PositiveIntegerField(default=0)),
                ('leaflet_left', models.PositiveIntegerField(default=0)),
                ('moved_or_vacant', models.PositiveIntegerField(default=0)),
                ('absent_pending', models.PositiveIntegerField(default=0)),
                ('not_visited', models.PositiveIntegerField(default=0)),
                ('neighborhoods', models.PositiveIntegerField(default=0)),
                ('neighborhoods_complete', models.PositiveIntegerField(default=0)),
                ('neighborhoods_in_progress', models.PositiveIntegerField(default=0)),
                ('neighborhoods_not_started', models.PositiveIntegerField(default=0)),
            ],
            options={
                'verbose_name': '訪問状況の合計',
                'verbose_name_plural': '訪問状況の合計',
            },
        ),
        migrations.CreateModel(
            name='CoverageWeekTotal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('week', models.DateField(help_text='The Monday of the ISO week')),
                ('finished', models.PositiveIntegerField(default=0)),
            ],
            options={
                'verbose_name': '週別訪問完了の合計',
                'verbose_name_plural': '週別訪問完了の合計',
            },
        ),
        migrations.AddIndex(
            model_name='coveragecell',
            index=models.Index(fields=['campaign', 'position', 'neighborhood'], name='coverage_cell_position'),
        ),
        migrations.AddField(
            model_name='coveragesummary',
            name='campaign',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='visits.campaign'),
        ),
        migrations.AddField(
            model_name='coveragesummary',
            name='municipality',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='neighborhoods.municipality'),
        ),
        migrations.AddField(
            model_name='coverageweektotal',
            name='campaign',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='visits.campaign'),
        ),
        migrations.AddField(
            model_name='coverageweektotal',
            name='municipality',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='neighborhoods.municipality'),
        ),
        migrations.AddConstraint(
            model_name='coveragesummary',
            constraint=models.UniqueConstraint(fields=('campaign', 'grouping', 'key'), name='coverage_summary_unique', nulls_distinct=False),
        ),
        migrations.AddConstraint(
            model_name='coverageweektotal',
            constraint=models.UniqueConstraint(fields=('campaign', 'week'), name='coverage_week_total_unique'),
        ),
        migrations.RunSQL("UPDATE maps_coveragerefresh SET source_version = ''", migrations.RunSQL.noop),
    ]
