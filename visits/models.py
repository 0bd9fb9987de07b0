"""Work at the door: partner organisations, their workers' visits, campaigns and schedules."""

from django.db import models


class PartnerOrganization(models.Model):
    """アウトリーチ受託法人: a corporation the municipality contracts for outreach visits."""

    municipality = models.ForeignKey(
        "neighborhoods.Municipality", on_delete=models.PROTECT, related_name="partner_organizations"
    )
    code = models.SlugField(max_length=50)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "アウトリーチ受託法人"
        verbose_name_plural = "アウトリーチ受託法人"
        ordering = ["municipality_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "code"], name="partner_code_unique_per_municipality"),
        ]

    def __str__(self) -> str:
        return self.name


class Allocation(models.Model):
    """自治会 handed to a partner corporation for visits: its workers may see the households there."""

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    partner_organization = models.ForeignKey(PartnerOrganization, on_delete=models.CASCADE, related_name="allocations")
    neighborhood = models.ForeignKey("neighborhoods.Neighborhood", on_delete=models.CASCADE, related_name="allocations")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "担当割当"
        verbose_name_plural = "担当割当"
        constraints = [
            models.UniqueConstraint(fields=["partner_organization", "neighborhood"], name="allocation_unique"),
        ]
        indexes = [models.Index(fields=["municipality", "neighborhood"], name="allocation_neighborhood")]

    def __str__(self) -> str:
        return f"{self.neighborhood} → {self.partner_organization}"
