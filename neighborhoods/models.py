"""Places and who lives there. Every row belongs to one municipality (the tenant)."""

from django.contrib.gis.db import models


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


class Neighborhood(models.Model):
    """自治会 (neighbourhood association) and its boundary."""

    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="neighborhoods")
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=100)
    kana = models.CharField(max_length=200, blank=True)
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

    def __str__(self) -> str:
        return self.name
