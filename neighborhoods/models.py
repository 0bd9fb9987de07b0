"""Places and who lives there. Every row belongs to one municipality (the tenant), and every unique
constraint and query includes it."""

import uuid

import pghistory
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex

from backend.db import change_seq_trigger


class Municipality(models.Model):
    """A 市町村: the tenant. Nothing crosses from one municipality to another."""

    code = models.CharField(
        "全国地方公共団体コード", max_length=6, unique=True, help_text="6-digit local government code"
    )
    name = models.CharField(max_length=100)
    name_kana = models.CharField(max_length=100, blank=True)
    prefecture = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "市町村"
        verbose_name_plural = "市町村"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.prefecture}{self.name}"


class District(models.Model):
    """地区: a part of the town (e.g. 北条地区, 大栄地区 in Hokuei)."""

    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="districts")
    name = models.CharField(max_length=100)
    code = models.CharField(max_length=32, blank=True)

    class Meta:
        verbose_name = "地区"
        verbose_name_plural = "地区"
        ordering = ["municipality_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "name"], name="district_name_unique_per_municipality"),
        ]

    def __str__(self) -> str:
        return self.name


class DailyLifeArea(models.Model):
    """日常生活圏域: a group of 自治会 served by one 地域包括支援センター (e.g. Okinawa City's 7)."""

    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="daily_life_areas")
    name = models.CharField(max_length=100)
    code = models.CharField(max_length=32, blank=True)

    class Meta:
        verbose_name = "日常生活圏域"
        verbose_name_plural = "日常生活圏域"
        ordering = ["municipality_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "name"], name="area_name_unique_per_municipality"),
        ]

    def __str__(self) -> str:
        return self.name


class Neighborhood(models.Model):
    """自治会 (neighbourhood association) and its boundary."""

    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="neighborhoods")
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=100)
    kana = models.CharField(max_length=200, blank=True)
    district = models.ForeignKey(District, on_delete=models.SET_NULL, null=True, blank=True, related_name="neighborhoods")
    daily_life_area = models.ForeignKey(
        DailyLifeArea, on_delete=models.SET_NULL, null=True, blank=True, related_name="neighborhoods"
    )
    geom = models.MultiPolygonField(srid=4326, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "自治会"
        verbose_name_plural = "自治会"
        ordering = ["municipality_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "code"], name="neighborhood_code_unique_per_municipality"),
        ]
        indexes = [
            models.Index(fields=["municipality", "district"], name="neighborhood_district"),
            models.Index(fields=["municipality", "daily_life_area"], name="neighborhood_area"),
        ]

    def __str__(self) -> str:
        return self.name


class HouseholdStatus(models.TextChoices):
    OCCUPIED = "occupied", "居住"
    VACANT = "vacant", "空き家"
    MOVED = "moved", "転居"
    UNKNOWN = "unknown", "不明"


class LivingArrangement(models.TextChoices):
    SINGLE_ELDERLY = "single_elderly", "独居高齢"
    ELDERLY_ONLY = "elderly_only", "高齢者のみ世帯"
    FAMILY = "family", "家族"
    SINGLE = "single", "単身"
    OTHER = "other", "その他"


class RiskFlag(models.TextChoices):
    EIGHTY_FIFTY = "8050", "8050"
    HIKIKOMORI = "hikikomori", "ひきこもり"
    HOARDING = "hoarding", "ゴミ屋敷"
    MULTI_PET = "multi_pet", "多頭飼育"
    NO_CONTACT = "no_contact", "連絡が取れない"
    YOUNG_CARER = "young_carer", "ヤングケアラー"
    DOUBLE_CARE = "double_care", "ダブルケア"
    POVERTY = "poverty", "生活困窮"


class MatchLevel(models.TextChoices):
    """How a household's point was found: given by the municipality's file, matched from its address
    against the national address reference (addresses app) at the finest level that matched, set by
    hand, or not yet."""

    COORDINATES = "coordinates", "座標（台帳）"
    RESIDENCE = "residence", "住居（住居表示）"
    BLOCK = "block", "街区・地番"
    TOWN = "town", "大字・町丁目"
    MANUAL = "manual", "手作業"
    UNMATCHED = "unmatched", "未照合"


@pghistory.track(exclude=["change_seq"], model_name="HouseholdHistory")
class Household(models.Model):
    """世帯: an address where people live (or lived). The point locates it; the 自治会 is derived
    from the point by a spatial join (services.assign_households)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="households")
    external_id = models.CharField(max_length=64, help_text="The municipality's own id (住民記録の世帯番号など)")
    address = models.CharField(max_length=300)
    address_kana = models.CharField(max_length=300, blank=True)
    location = models.PointField(srid=4326, null=True, blank=True)
    match_level = models.CharField(
        max_length=12, choices=MatchLevel.choices, default=MatchLevel.UNMATCHED,
        help_text="How the point was found (given, matched from the address at a level, by hand, or not).",
    )
    address_normalized = models.CharField(
        max_length=300, blank=True, help_text="The address in one spelling (addresses.normalize), for matching and duplicates.",
    )
    neighborhood = models.ForeignKey(
        Neighborhood, on_delete=models.SET_NULL, null=True, blank=True, related_name="households"
    )
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged_households",
        help_text="Set when a coordinator merged this household into another (a duplicate); its history stays.",
    )
    merged_at = models.DateTimeField(null=True, blank=True)
    member_count = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="世帯人数 as the municipality's list gives it (residents may be fewer).",
    )
    status = models.CharField(max_length=10, choices=HouseholdStatus.choices, default=HouseholdStatus.OCCUPIED)
    living_arrangement = models.CharField(max_length=20, choices=LivingArrangement.choices, blank=True)
    risk_flags = ArrayField(
        models.CharField(max_length=20, choices=RiskFlag.choices), default=list, blank=True,
        help_text="要配慮個人情報: indicators such as 8050, ひきこもり, ゴミ屋敷",
    )
    version = models.PositiveIntegerField(default=1, help_text="Raised on every change (offline edits name it).")
    change_seq = models.BigIntegerField(default=0, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "世帯"
        verbose_name_plural = "世帯"
        ordering = ["municipality_id", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "external_id"], name="household_external_id_unique"),
            models.CheckConstraint(
                condition=models.Q(member_count__isnull=True) | models.Q(member_count__gte=1, member_count__lte=99),
                name="household_member_count_plausible",
            ),
            models.CheckConstraint(
                condition=models.Q(merged_into__isnull=True) | ~models.Q(merged_into=models.F("id")),
                name="household_not_merged_into_itself",
            ),
        ]
        indexes = [
            # A 自治会's households in external_id order (lists, a worker's first page per 自治会).
            models.Index(fields=["municipality", "neighborhood", "external_id"], name="household_neighborhood_order"),
            models.Index(fields=["municipality", "status"], name="household_status"),
            models.Index(fields=["municipality", "address_normalized"], name="household_address_norm"),
            models.Index(fields=["municipality", "match_level"], name="household_match_level"),
            # The newest change of one municipality (the coverage snapshot's and the tiles' data
            # version, the sync pull): change_seq alone walks every other town's newer rows first.
            models.Index(fields=["municipality", "change_seq"], name="household_seq"),
            GinIndex(fields=["risk_flags"], name="household_risk_flags"),
            GinIndex(
                name="household_address_trgm", fields=["address"], opclasses=["gin_trgm_ops"],
            ),
            GinIndex(
                name="household_kana_trgm", fields=["address_kana"], opclasses=["gin_trgm_ops"],
            ),
        ]
        triggers = [change_seq_trigger("household_change_seq")]

    def __str__(self) -> str:
        return self.address


class ResidentFlag(models.TextChoices):
    CARE_NEED = "care_need", "要介護"
    DISABILITY = "disability", "障がい"
    HIKIKOMORI = "hikikomori", "ひきこもり"
    YOUNG_CARER = "young_carer", "ヤングケアラー"
    DEMENTIA = "dementia", "認知症"


class Relation(models.TextChoices):
    HEAD = "head", "世帯主"
    SPOUSE = "spouse", "配偶者"
    CHILD = "child", "子"
    PARENT = "parent", "親"
    GRANDCHILD = "grandchild", "孫"
    SIBLING = "sibling", "兄弟姉妹"
    OTHER = "other", "その他"


class AgeBand(models.TextChoices):
    UNDER_18 = "under_18", "18歳未満"
    AGE_18_39 = "18_39", "18〜39歳"
    AGE_40_64 = "40_64", "40〜64歳"
    AGE_65_74 = "65_74", "65〜74歳"
    AGE_75_PLUS = "75_plus", "75歳以上"


@pghistory.track(model_name="ResidentHistory")
class Resident(models.Model):
    """世帯員: a person in a household. Everything but the name is 要配慮個人情報; reading it is audited."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="residents")
    name = models.CharField(max_length=100)
    kana = models.CharField(max_length=100, blank=True)
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True)
    age_band = models.CharField(max_length=10, choices=AgeBand.choices, blank=True)
    relation = models.CharField(max_length=12, choices=Relation.choices, default=Relation.OTHER)
    flags = ArrayField(models.CharField(max_length=20, choices=ResidentFlag.choices), default=list, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "世帯員"
        verbose_name_plural = "世帯員"
        ordering = ["household_id", "birth_year", "name"]
        indexes = [
            models.Index(fields=["municipality", "household"], name="resident_household"),
            GinIndex(fields=["flags"], name="resident_flags"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(birth_year__isnull=True) | models.Q(birth_year__gte=1890, birth_year__lte=2100),
                name="resident_birth_year_plausible",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ResourceType(models.TextChoices):
    FUREAI_CENTER = "fureai_center", "あったかふれあいセンター"
    SALON = "salon", "サロン"
    KODOMO_SHOKUDO = "kodomo_shokudo", "子ども食堂"
    COMMUNITY_HALL = "community_hall", "公民館"
    LIBRARY = "library", "図書館"
    FARM = "farm", "農福連携"
    OTHER = "other", "その他"


class Weekday(models.TextChoices):
    MON = "mon", "月"
    TUE = "tue", "火"
    WED = "wed", "水"
    THU = "thu", "木"
    FRI = "fri", "金"
    SAT = "sat", "土"
    SUN = "sun", "日"


class CommunityResource(models.Model):
    """居場所・社会資源: places people can join (サロン, 子ども食堂, 公民館 …)."""

    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="community_resources")
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=ResourceType.choices)
    location = models.PointField(srid=4326)
    neighborhood = models.ForeignKey(
        Neighborhood, on_delete=models.SET_NULL, null=True, blank=True, related_name="community_resources"
    )
    opening_days = ArrayField(models.CharField(max_length=3, choices=Weekday.choices), default=list, blank=True)
    address = models.CharField(max_length=300, blank=True)
    contact = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "社会資源"
        verbose_name_plural = "社会資源"
        ordering = ["municipality_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "name"], name="resource_name_unique_per_municipality"),
        ]
        indexes = [models.Index(fields=["municipality", "type"], name="resource_type")]

    def __str__(self) -> str:
        return self.name


class HouseholdTally(models.Model):
    """How many households a 自治会 has (those not merged into another: the ones its lists show),
    kept by statement-level triggers on neighborhoods_household (migration 0007) as households are
    imported, moved, merged or deleted. The 自治会 list, the 日常生活圏域 list and the GeoJSON read
    these rows instead of counting a whole town's households per request (1.8 million in the largest).
    The row goes with its 自治会 by the database's own ON DELETE CASCADE (the ORM's delete would
    otherwise remove it before the households it counts leave the 自治会)."""

    neighborhood = models.OneToOneField(
        Neighborhood, on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True, related_name="tally",
    )
    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="+")
    households = models.IntegerField(default=0)

    class Meta:
        verbose_name = "自治会の世帯数"
        verbose_name_plural = "自治会の世帯数"


class DistinctHouseholds(models.Model):
    """Two households a coordinator judged NOT to be duplicates, so the duplicate report stops
    listing them as a pair. Stored once per pair, the smaller id first."""

    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="+")
    first = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="+")
    decided_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "重複でない世帯の組"
        verbose_name_plural = "重複でない世帯の組"
        constraints = [
            models.UniqueConstraint(fields=["municipality", "first", "second"], name="distinct_households_once"),
            models.CheckConstraint(condition=models.Q(first__lt=models.F("second")), name="distinct_households_ordered"),
        ]


class DuplicateScan(models.Model):
    """The stored duplicate report of a municipality (neighborhoods.duplicates): the version of its
    inputs (households and residents, maps.queries.data_version) that the stored pairs were computed
    from, and the refresh asked for when a read found them stale. No row, or no `computed_at`: never
    computed yet."""

    municipality = models.OneToOneField(Municipality, on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.TextField(blank=True, help_text="The version of the inputs the stored pairs were computed from")
    requested_version = models.TextField(blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    pairs = models.PositiveIntegerField(default=0, help_text="Pairs found by the last computation")

    class Meta:
        verbose_name = "重複候補の集計状態"
        verbose_name_plural = "重複候補の集計状態"


class PossibleDuplicatePair(models.Model):
    """One pair of the stored duplicate report, as neighborhoods.duplicates found it, at its place
    in the report's order (`position`): a page is a range of the (municipality, position) index.
    Merging or judging a pair distinct deletes its rows in the same transaction."""

    municipality = models.ForeignKey(Municipality, on_delete=models.CASCADE, related_name="+", db_index=False)
    position = models.PositiveIntegerField()
    # Cascading in the database (migration 0008), as HouseholdTally's: not a reference a merge moves.
    first = models.ForeignKey(Household, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    second = models.ForeignKey(Household, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    first_external_id = models.CharField(max_length=64)
    first_address = models.CharField(max_length=300)
    first_name = models.TextField(blank=True)
    second_external_id = models.CharField(max_length=64)
    second_address = models.CharField(max_length=300)
    second_name = models.TextField(blank=True)
    address_normalized = models.CharField(max_length=300)
    compared = models.CharField(max_length=4, blank=True)
    score = models.FloatField(null=True, blank=True)
    reason = models.CharField(max_length=16)

    class Meta:
        verbose_name = "重複候補の組"
        verbose_name_plural = "重複候補の組"
        constraints = [
            models.UniqueConstraint(fields=["municipality", "position"], name="possible_duplicate_position"),
        ]
