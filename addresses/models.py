"""The national address reference of a municipality: representative points of its 住居 (住居表示),
街区・地番 and 大字・町丁目, loaded from 国土交通省 位置参照情報 and デジタル庁 アドレス・ベース・レジストリ
files (`manage.py import_address_reference`) and used to place households that have an address and
no point (addresses.placement)."""

from django.contrib.gis.db import models


class ReferenceLevel(models.TextChoices):
    """The finest level a reference point stands for; placement tries them in this order."""

    RESIDENCE = "residence", "住居（住居表示）"
    BLOCK = "block", "街区・地番"
    TOWN = "town", "大字・町丁目"


class ReferenceSource(models.TextChoices):
    """Which kind of file a point came from."""

    MLIT_BLOCK = "mlit_block", "位置参照情報（街区レベル）"
    MLIT_TOWN = "mlit_town", "位置参照情報（大字・町丁目レベル）"
    ABR_RESIDENCE = "abr_residence", "ABR 住居表示－住居（位置参照拡張）"
    ABR_BLOCK = "abr_block", "ABR 住居表示－街区（位置参照拡張）"
    ABR_TOWN = "abr_town", "ABR 町字（位置参照拡張）"


class AddressReference(models.Model):
    """One reference point. The keys are normalised as household addresses are
    (addresses.normalize): `town` is the 大字・町 name with its 丁目 as a number ("中央3丁目", "西園"),
    `block` the 街区符号 or the 地番's 親番 ("" at town level), `residence` the 住居番号 ("" above it)."""

    municipality = models.ForeignKey(
        "neighborhoods.Municipality", on_delete=models.PROTECT, related_name="address_references"
    )
    level = models.CharField(max_length=10, choices=ReferenceLevel.choices)
    town = models.CharField(max_length=120)
    block = models.CharField(max_length=32, blank=True)
    residence = models.CharField(max_length=32, blank=True)
    location = models.PointField(srid=4326)
    source = models.CharField(max_length=16, choices=ReferenceSource.choices)
    label = models.CharField(max_length=200, blank=True, help_text="The place as the file writes it (大字・丁目名 番地 …).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "住所参照点"
        verbose_name_plural = "住所参照点"
        ordering = ["municipality_id", "town", "block", "residence"]
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "level", "town", "block", "residence"], name="address_reference_unique",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(level="town", block="", residence="")
                    | models.Q(level="block", residence="") & ~models.Q(block="")
                    | models.Q(level="residence") & ~models.Q(block="") & ~models.Q(residence="")
                ),
                name="address_reference_keys_match_level",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.town}{self.block}{'-' + self.residence if self.residence else ''}"


class MatchLevelTally(models.Model):
    """How many households of a municipality (not merged into another) have each match level, kept
    by statement-level triggers on neighborhoods_household (migration 0002): the placement summary
    reads these rows instead of counting a whole town's households per request."""

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.CASCADE, related_name="+",
                                     db_index=False)
    match_level = models.CharField(max_length=12)
    households = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "照合レベル別の世帯数"
        verbose_name_plural = "照合レベル別の世帯数"
        constraints = [
            models.UniqueConstraint(fields=["municipality", "match_level"], name="match_level_tally_once"),
        ]


class ReferenceLevelTally(models.Model):
    """How many reference points a municipality has at each level, kept by statement-level triggers
    on addresses_addressreference (migration 0002)."""

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.CASCADE, related_name="+",
                                     db_index=False)
    level = models.CharField(max_length=10)
    points = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "レベル別の住所参照点数"
        verbose_name_plural = "レベル別の住所参照点数"
        constraints = [
            models.UniqueConstraint(fields=["municipality", "level"], name="reference_level_tally_once"),
        ]
