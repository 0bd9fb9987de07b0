"""Coverage snapshots: per campaign and 自治会, the survey's numbers, computed in SQL by a refresh
(maps.services.refresh_coverage, run as a django-q2 task) and read by the coverage endpoints and
the neighborhoods tile. At a million households the aggregate takes seconds; reading the snapshot
takes milliseconds, and every read says how old it is."""

from django.db import models


class CoverageCounts(models.Model):
    """Households in scope and how far the survey got with them (visits.coverage.COUNTS).

    in_scope = households not known to be vacant or moved, plus those the campaign found vacant or
    moved (they count as finished). Each in-scope household is in exactly one of finished (met,
    refused, leaflet_left, moved_or_vacant), absent_pending (tried, not finished) and not_visited."""

    in_scope = models.PositiveIntegerField(default=0)
    met = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    leaflet_left = models.PositiveIntegerField(default=0)
    moved_or_vacant = models.PositiveIntegerField(default=0)
    absent_pending = models.PositiveIntegerField(default=0)
    not_visited = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class CoverageCell(CoverageCounts):
    """One 自治会 of one campaign: its coverage counts."""

    campaign = models.ForeignKey("visits.Campaign", on_delete=models.CASCADE, related_name="+")
    neighborhood = models.ForeignKey("neighborhoods.Neighborhood", on_delete=models.CASCADE, related_name="+")
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.CASCADE, related_name="+")
    # Copied from the 自治会, its place in the campaign and its allocation when the snapshot was made
    # (they are part of the snapshot's version), so reads group and filter without joins.
    position = models.PositiveIntegerField(default=0)
    district_id = models.BigIntegerField(null=True, blank=True)
    daily_life_area_id = models.BigIntegerField(null=True, blank=True)
    partner_organization_id = models.BigIntegerField(null=True, blank=True)
    # Of the households not finished, those absent until a leaflet is due (campaign progress shows it).
    leaflet_due = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "訪問状況 (自治会別)"
        verbose_name_plural = "訪問状況 (自治会別)"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "neighborhood"], name="coverage_cell_unique"),
        ]
        indexes = [
            models.Index(fields=["municipality", "campaign"], name="coverage_cell_campaign"),
            # A page of a campaign's 自治会 in target order (campaign progress, coverage per 自治会).
            models.Index(fields=["campaign", "position", "neighborhood"], name="coverage_cell_position"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.neighborhood_id} {self.in_scope}"


class CoverageWeek(models.Model):
    """Households of a campaign's 自治会 that were finished in one ISO week (Monday, Japan time)."""

    campaign = models.ForeignKey("visits.Campaign", on_delete=models.CASCADE, related_name="+")
    neighborhood = models.ForeignKey("neighborhoods.Neighborhood", on_delete=models.CASCADE, related_name="+")
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.CASCADE, related_name="+")
    district_id = models.BigIntegerField(null=True, blank=True)
    daily_life_area_id = models.BigIntegerField(null=True, blank=True)
    partner_organization_id = models.BigIntegerField(null=True, blank=True)
    week = models.DateField(help_text="The Monday of the ISO week")
    finished = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "週別訪問完了"
        verbose_name_plural = "週別訪問完了"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "neighborhood", "week"], name="coverage_week_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.neighborhood_id} {self.week} +{self.finished}"


class CoverageSummary(CoverageCounts):
    """A campaign's cells summed once per refresh: the whole campaign (grouping "all", key NULL) and
    per corporation, 地区 and 日常生活圏域 (key: its id, NULL for cells without one). Written in the
    refresh's transaction (maps.services.refresh_coverage), so a reader sees the cells and their sums
    of the same snapshot. Coverage totals, the per-corporation and per-campaign views and campaign
    progress read these rows instead of summing a city's 3,000 cells per request (issue 15)."""

    class Grouping(models.TextChoices):
        ALL = "all", "全体"
        PARTNER = "partner", "法人別"
        DISTRICT = "district", "地区別"
        DAILY_LIFE_AREA = "daily_life_area", "日常生活圏域別"

    campaign = models.ForeignKey("visits.Campaign", on_delete=models.CASCADE, related_name="+")
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.CASCADE, related_name="+")
    grouping = models.CharField(max_length=20, choices=Grouping.choices)
    key = models.BigIntegerField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0, help_text="The first position of its cells in the campaign")
    neighborhoods = models.PositiveIntegerField(default=0)
    neighborhoods_complete = models.PositiveIntegerField(default=0)
    neighborhoods_in_progress = models.PositiveIntegerField(default=0)
    neighborhoods_not_started = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "訪問状況の合計"
        verbose_name_plural = "訪問状況の合計"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "grouping", "key"], name="coverage_summary_unique",
                                    nulls_distinct=False),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.grouping}:{self.key} {self.in_scope}"


class CoverageWeekTotal(models.Model):
    """A campaign's finished households per ISO week, all its 自治会 together (the weekly series
    without filters), written with the summary."""

    campaign = models.ForeignKey("visits.Campaign", on_delete=models.CASCADE, related_name="+")
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.CASCADE, related_name="+")
    week = models.DateField(help_text="The Monday of the ISO week")
    finished = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "週別訪問完了の合計"
        verbose_name_plural = "週別訪問完了の合計"
        constraints = [models.UniqueConstraint(fields=["campaign", "week"], name="coverage_week_total_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.week} +{self.finished}"


class CoverageRefresh(models.Model):
    """When a campaign's snapshot was last computed, and from which version of its sources.

    `requested_version` deduplicates refresh requests: a read that finds the sources changed asks
    for a refresh only if nobody asked for that version yet."""

    campaign = models.OneToOneField("visits.Campaign", on_delete=models.CASCADE, primary_key=True, related_name="+")
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.CASCADE, related_name="+")
    source_version = models.CharField(max_length=200, blank=True)
    requested_version = models.CharField(max_length=200, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "訪問状況の集計"
        verbose_name_plural = "訪問状況の集計"

    def __str__(self) -> str:
        return f"{self.campaign_id} @ {self.refreshed_at}"


class MapDataChange(models.Model):
    """One statement that changed an input of the map tiles, for one municipality: the cheap data
    version behind tile ETags and the tile cache (maps.tile_cache).

    Written only by the database: statement-level triggers on the inputs (households, visit
    records, campaign states, concerns, cases, 自治会, resources, allocations, campaigns; migration
    0003) insert one row per municipality a statement touched. A version is the sum of `changes`
    of a municipality's rows for an input: rows are only ever added (no writer waits for another,
    as it would on one counter row), a rolled-back statement adds nothing, and every commit that
    changes an input makes its sum larger, so no two states of the data share a version. The
    periodic compaction (maps.tile_cache.compact_changes) folds the rows into one, keeping the sum."""

    # No database constraint: the triggers note changes of rows being deleted with their
    # municipality too, and a foreign key checked at commit would then refuse the deletion.
    municipality = models.ForeignKey(
        "neighborhoods.Municipality", on_delete=models.DO_NOTHING, related_name="+", db_index=False,
        db_constraint=False,
    )
    input = models.CharField(max_length=30)
    changes = models.BigIntegerField(default=1)

    class Meta:
        verbose_name = "地図データの変更"
        verbose_name_plural = "地図データの変更"
        indexes = [
            models.Index(fields=["municipality", "input"], include=["changes"], name="map_data_change_version"),
        ]

    def __str__(self) -> str:
        return f"{self.municipality_id}:{self.input} +{self.changes}"


class CachedTile(models.Model):
    """A rendered vector tile, kept until the data under it changes (maps.tile_cache).

    `key` names what the tile shows (layer, z/x/y, options, whose view) and `version` the data it
    was made from; a request whose current version differs renders again and replaces the row, so
    a key holds one tile. Tiles carry people data (household points and indicators), so the table
    is a tenant table under row-level security like every other. UNLOGGED (migration 0003): a
    crash empties it, which costs renders, never correctness."""

    key = models.UUIDField(primary_key=True, help_text="128 bits of the hash of what the tile shows")
    municipality = models.ForeignKey(
        "neighborhoods.Municipality", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    layer = models.CharField(max_length=20)
    version = models.TextField()
    tile = models.BinaryField()
    size = models.PositiveIntegerField(default=0)
    rendered_at = models.DateTimeField()

    class Meta:
        verbose_name = "タイルキャッシュ"
        verbose_name_plural = "タイルキャッシュ"
        indexes = [models.Index(fields=["municipality", "rendered_at"], name="cached_tile_age")]

    def __str__(self) -> str:
        return f"{self.layer} {str(self.key)[:8]} @ {self.rendered_at}"
