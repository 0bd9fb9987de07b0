"""What the visits and the neighbourhood find, followed up until someone is connected to support:
支え愛連絡会 meetings and 見守り, concerns (気づき) and continuous outreach cases (継続的支援)."""

import datetime as dt
import uuid
from typing import TypeAlias

import pghistory
from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from backend.db import change_seq_trigger


class MeetingRole(models.TextChoices):
    NEIGHBORHOOD_OFFICER = "neighborhood_officer", "自治会役員"
    COMMISSIONER = "commissioner", "民生児童委員"
    WELFARE_PROMOTER = "welfare_promoter", "福祉推進員"
    AINOWA = "ainowa", "愛の輪協力員"
    WELFARE_DIVISION = "welfare_division", "福祉課"
    SHAKYO = "shakyo", "社協"
    OTHER = "other", "その他"


class Meeting(models.Model):
    """支え愛連絡会: a 自治会's mutual-aid meeting where people they worry about are discussed."""

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    neighborhood = models.ForeignKey("neighborhoods.Neighborhood", on_delete=models.PROTECT, related_name="meetings")
    held_on = models.DateField()
    attendees = models.JSONField(default=list, blank=True, help_text='[{"role": "commissioner", "name": "…"}]')
    notes = models.TextField(blank=True, help_text="要配慮個人情報")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "支え愛連絡会"
        verbose_name_plural = "支え愛連絡会"
        ordering = ["-held_on"]
        indexes = [models.Index(fields=["municipality", "neighborhood", "-held_on"], name="meeting_neighborhood")]

    def __str__(self) -> str:
        return f"{self.neighborhood} {self.held_on}"


# --- overdue: the one rule ----------------------------------------------------------------------
# A case is overdue when it is open and its next contact was due before today; a 見守り when it has
# not ended and its next check-in was due before today. "Today" is Asia/Tokyo's, decided in Python
# (timezone.localdate()) and passed to SQL as a parameter, never the database's CURRENT_DATE. These
# two SQL fragments are the only statement of the rule: the querysets' `with_overdue()` annotation
# (every list, filter and output), the daily sweep's UPDATE and the map's overdue list use them.


def case_overdue_sql(table: str, today: str = "%s") -> str:
    """The overdue rule of a case as an SQL boolean over `table` (a table name or alias), with
    `today` the placeholder of the day's parameter."""
    return f"({table}.status = 'open' AND {table}.next_contact_due < {today})"


def watch_overdue_sql(table: str, today: str = "%s") -> str:
    """The overdue rule of a 見守り, as case_overdue_sql."""
    return f"({table}.ended_on IS NULL AND {table}.next_due < {today})"


class OverdueQuerySet(models.QuerySet):
    """`with_overdue()` annotates `overdue_today` (the rule, today); `overdue(flag)` filters on it."""

    @staticmethod
    def overdue_sql(table: str, today: str = "%s") -> str:
        raise NotImplementedError

    def with_overdue(self, today: dt.date | None = None):
        table = connection.ops.quote_name(self.model._meta.db_table)
        rule = RawSQL(  # noqa: S611 - a constant fragment; today is bound
            self.overdue_sql(table), (today or timezone.localdate(),), output_field=models.BooleanField()
        )
        return self.annotate(overdue_today=rule)

    def overdue(self, flag: bool = True, today: dt.date | None = None):
        return self.with_overdue(today).filter(overdue_today=flag)


class WatchQuerySet(OverdueQuerySet):
    overdue_sql = staticmethod(watch_overdue_sql)


class CaseQuerySet(OverdueQuerySet):
    overdue_sql = staticmethod(case_overdue_sql)


class CorrectableQuerySet(models.QuerySet):
    def effective(self):
        """The entries that stand: neither corrected by a later entry nor a retraction."""
        return self.filter(superseded_by__isnull=True, retracted=False)


def _correction_constraints(prefix: str) -> list[models.BaseConstraint]:
    """A correction says why; only a correction may retract; an entry does not correct itself."""
    return [
        models.CheckConstraint(
            condition=Q(supersedes__isnull=True, correction_reason="")
            | (Q(supersedes__isnull=False) & ~Q(correction_reason="")),
            name=f"{prefix}_correction_has_reason",
        ),
        models.CheckConstraint(condition=Q(retracted=False) | Q(supersedes__isnull=False), name=f"{prefix}_retraction_corrects"),
        models.CheckConstraint(condition=~Q(supersedes=F("pk")), name=f"{prefix}_not_self_correcting"),
    ]


class WatchArrangement(models.Model):
    """見守り: who keeps an eye on which household, how often."""

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    meeting = models.ForeignKey(Meeting, on_delete=models.SET_NULL, null=True, blank=True, related_name="watches")
    household = models.ForeignKey("neighborhoods.Household", on_delete=models.PROTECT, related_name="watches")
    watcher_name = models.CharField(max_length=100)
    watcher_role = models.CharField(max_length=30, choices=MeetingRole.choices)
    cadence_days = models.PositiveSmallIntegerField()
    started_on = models.DateField()
    ended_on = models.DateField(null=True, blank=True)
    last_check_in = models.DateField(null=True, blank=True)
    next_due = models.DateField()
    overdue = models.BooleanField(
        default=False, help_text="The daily sweep's snapshot (for notifications); reads compute overdue (with_overdue)"
    )
    notes = models.TextField(blank=True)

    objects = WatchQuerySet.as_manager()

    class Meta:
        verbose_name = "見守り"
        verbose_name_plural = "見守り"
        constraints = [models.CheckConstraint(condition=Q(cadence_days__gte=1), name="watch_cadence_positive")]
        indexes = [models.Index(fields=["municipality", "next_due"], condition=Q(ended_on__isnull=True), name="watch_active_due")]

    def __str__(self) -> str:
        return f"{self.watcher_name} → {self.household_id} every {self.cadence_days}d"


class WatchCheckIn(models.Model):
    """A 見守り check-in. Never edited or deleted by anyone: a wrong one is corrected by a later entry
    that supersedes it (with who and why), or retracted by one that says it should not exist."""

    arrangement = models.ForeignKey(WatchArrangement, on_delete=models.CASCADE, related_name="check_ins")
    checked_on = models.DateField()
    ok = models.BooleanField(default=True, help_text="False: something was wrong (raise a concern)")
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by",
        help_text="The check-in this entry corrects (each is corrected at most once)",
    )
    correction_reason = models.TextField(blank=True, help_text="Why the superseded entry was wrong")
    retracted = models.BooleanField(default=False, help_text="The superseded entry should not exist")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CorrectableQuerySet.as_manager()

    class Meta:
        ordering = ["-checked_on"]
        constraints = _correction_constraints("checkin")

    def __str__(self) -> str:
        return f"{self.arrangement_id} {self.checked_on}"


class Counter(models.TextChoices):
    """つなぐ先: the counters a concern can be referred to."""

    ELDERLY = "elderly", "高齢"
    DISABILITY = "disability", "障がい"
    CHILDREN = "children", "子ども"
    POVERTY = "poverty", "生活困窮"
    HOUSING = "housing", "住まい"
    HEALTH = "health", "保健"
    EDUCATION = "education", "教育"
    OTHER = "other", "その他"


class ConcernSource(models.TextChoices):
    MEETING = "meeting", "支え愛連絡会"
    COMMISSIONER = "commissioner", "民生委員"
    VISIT = "visit", "訪問"
    COUNTER = "counter", "他の窓口"
    OTHER = "other", "その他"


class ConcernUrgency(models.TextChoices):
    LOW = "low", "低"
    NORMAL = "normal", "通常"
    HIGH = "high", "高"
    URGENT = "urgent", "緊急"


class ConcernStatus(models.TextChoices):
    NEW = "new", "新規"
    TRIAGED = "triaged", "確認済"
    WATCHING = "watching", "見守り"
    REFERRED = "referred", "つなぎ済"
    CASE_OPENED = "case_opened", "継続支援"
    CLOSED = "closed", "終了"


@pghistory.track(exclude=["change_seq"], model_name="ConcernHistory")
class Concern(models.Model):
    """気づき: something someone noticed about a household or person, followed until connected."""

    Source: TypeAlias = ConcernSource
    Urgency: TypeAlias = ConcernUrgency
    Status: TypeAlias = ConcernStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, help_text="May be made by the device")
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=15, choices=Source.choices)
    source_detail = models.CharField(max_length=100, blank=True, help_text="e.g. the counter: 税務課, 水道課")
    meeting = models.ForeignKey(Meeting, on_delete=models.SET_NULL, null=True, blank=True, related_name="concerns")
    visit_record = models.ForeignKey(
        "visits.VisitRecord", on_delete=models.SET_NULL, null=True, blank=True, related_name="raised_concerns"
    )
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reported_concerns")
    household = models.ForeignKey(
        "neighborhoods.Household", on_delete=models.PROTECT, null=True, blank=True, related_name="concerns"
    )
    resident = models.ForeignKey(
        "neighborhoods.Resident", on_delete=models.SET_NULL, null=True, blank=True, related_name="concerns"
    )
    neighborhood = models.ForeignKey(
        "neighborhoods.Neighborhood", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Where it is: the household's 自治会, or the one containing the pin",
    )
    pin = models.PointField(srid=4326, null=True, blank=True, help_text="Where, when the household is not known yet")
    place_description = models.CharField(max_length=300, blank=True)
    categories = ArrayField(models.CharField(max_length=30), default=list)
    urgency = models.CharField(max_length=10, choices=Urgency.choices, default=Urgency.NORMAL)
    description = models.TextField(blank=True, help_text="要配慮個人情報")
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.NEW)
    referred_to = models.CharField(max_length=15, choices=Counter.choices, blank=True)
    case = models.ForeignKey("OutreachCase", on_delete=models.SET_NULL, null=True, blank=True, related_name="concerns")
    version = models.PositiveIntegerField(default=1)
    change_seq = models.BigIntegerField(default=0, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "気づき"
        verbose_name_plural = "気づき"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["municipality", "status"], name="concern_status"),
            models.Index(fields=["municipality", "neighborhood"], name="concern_neighborhood"),
            models.Index(fields=["household"], name="concern_household"),
            models.Index(fields=["reported_by", "-created_at"], name="concern_reporter"),
            # The list's order (newest first): a page is read from the index, not by sorting a town.
            models.Index(fields=["municipality", "-created_at", "id"], name="concern_newest"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(household__isnull=False) | Q(pin__isnull=False), name="concern_has_household_or_pin"
            ),
        ]
        triggers = [change_seq_trigger("concern_change_seq")]

    def __str__(self) -> str:
        return f"{self.get_status_display()} {', '.join(self.categories)}"


class ConcernTransition(models.Model):
    """Every change of a concern's status: who, when, why."""

    concern = models.ForeignKey(Concern, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=15, blank=True)
    to_status = models.CharField(max_length=15)
    reason = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class CaseStage(models.TextChoices):
    NO_CONTACT = "no_contact", "未接触"
    CONTACT = "contact", "接触できた"
    CONVERSATION = "conversation", "会話できる"
    TRUST = "trust", "信頼関係"
    ENGAGED = "engaged", "支援につながった"


class CaseConsent(models.TextChoices):
    NONE = "none", "同意なし"
    CONSENTED = "consented", "重層的支援会議での共有に同意"


class CaseStatus(models.TextChoices):
    OPEN = "open", "支援中"
    CLOSED = "closed", "終結"


class CaseClosureReason(models.TextChoices):
    RESOLVED = "resolved", "主訴解消"
    HANDED_OVER = "handed_over", "既存窓口へ"
    MOVED = "moved", "転居"
    DIED = "died", "死亡"
    OTHER = "other", "その他"


@pghistory.track(exclude=["change_seq", "overdue"], model_name="OutreachCaseHistory")
class OutreachCase(models.Model):
    """継続的支援: long-running outreach to someone who won't come to a counter."""

    Stage: TypeAlias = CaseStage
    Consent: TypeAlias = CaseConsent
    Status: TypeAlias = CaseStatus
    ClosureReason: TypeAlias = CaseClosureReason

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey("neighborhoods.Household", on_delete=models.PROTECT, related_name="cases")
    resident = models.ForeignKey("neighborhoods.Resident", on_delete=models.SET_NULL, null=True, blank=True, related_name="cases")
    title = models.CharField(max_length=200, help_text="A short label, e.g. 長期ひきこもり (50代男性)")
    lead_partner = models.ForeignKey("visits.PartnerOrganization", on_delete=models.PROTECT, null=True, blank=True, related_name="cases")
    lead_worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="lead_cases")
    cadence_days = models.PositiveSmallIntegerField(default=14)
    stage = models.CharField(max_length=15, choices=Stage.choices, default=Stage.NO_CONTACT)
    consent = models.CharField(max_length=10, choices=Consent.choices, default=Consent.NONE)
    consent_date = models.DateField(null=True, blank=True)
    consent_scope = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_on = models.DateField()
    last_contact_on = models.DateField(null=True, blank=True)
    next_contact_due = models.DateField()
    overdue = models.BooleanField(
        default=False, help_text="The daily sweep's snapshot (for notifications); reads compute overdue (with_overdue)"
    )
    closed_on = models.DateField(null=True, blank=True)
    closure_reason = models.CharField(max_length=15, choices=ClosureReason.choices, blank=True)
    evaluation = models.TextField(blank=True)
    notes = models.TextField(blank=True, help_text="要配慮個人情報")
    version = models.PositiveIntegerField(default=1)
    change_seq = models.BigIntegerField(default=0, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CaseQuerySet.as_manager()

    class Meta:
        verbose_name = "継続的支援"
        verbose_name_plural = "継続的支援"
        ordering = ["next_contact_due"]
        indexes = [
            models.Index(fields=["municipality", "status", "next_contact_due"], name="case_due"),
            models.Index(fields=["lead_worker", "status"], name="case_worker"),
            models.Index(fields=["household"], name="case_household"),
            # The list's order (next contact due first) whatever the status: a page from the index.
            models.Index(fields=["municipality", "next_contact_due", "id"], name="case_next_due"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(cadence_days__gte=1), name="case_cadence_positive"),
            models.CheckConstraint(
                condition=Q(consent="none") | Q(consent_date__isnull=False), name="case_consent_has_date"
            ),
            models.CheckConstraint(
                condition=Q(status="open") | (Q(closed_on__isnull=False) & ~Q(closure_reason="")),
                name="case_closed_has_reason",
            ),
        ]
        triggers = [change_seq_trigger("case_change_seq")]

    def __str__(self) -> str:
        return self.title


class CaseContactKind(models.TextChoices):
    VISIT = "visit", "訪問"
    CALL = "call", "電話"
    LETTER = "letter", "手紙"
    NO_ANSWER = "no_answer", "応答なし"
    MEETING = "meeting", "面談"


class CaseContact(models.Model):
    """One contact attempt in a case: a visit, a call, a letter, or no answer. Never edited or
    deleted by anyone: corrected by a later entry that supersedes it, as a 見守り check-in."""

    Kind: TypeAlias = CaseContactKind

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, help_text="May be made by the device")
    case = models.ForeignKey(OutreachCase, on_delete=models.CASCADE, related_name="contacts")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    contacted_on = models.DateField()
    reached = models.BooleanField(default=False)
    note = models.TextField(blank=True, help_text="要配慮個人情報")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by",
        help_text="The contact this entry corrects (each is corrected at most once)",
    )
    correction_reason = models.TextField(blank=True, help_text="Why the superseded entry was wrong")
    retracted = models.BooleanField(default=False, help_text="The superseded entry should not exist")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CorrectableQuerySet.as_manager()

    class Meta:
        ordering = ["-contacted_on", "-created_at"]
        constraints = _correction_constraints("contact")

    def __str__(self) -> str:
        return f"{self.case_id} {self.contacted_on} {self.kind}"


class CaseMeetingKind(models.TextChoices):
    SUPPORT = "support", "支援会議"
    MULTI_AGENCY = "multi_agency", "重層的支援会議"


class CaseMeeting(models.Model):
    """支援会議 (art. 106-6: shared without consent, members bound to confidentiality) or
    重層的支援会議 (only with the person's consent: approves and evaluates the plan)."""

    Kind: TypeAlias = CaseMeetingKind

    case = models.ForeignKey(OutreachCase, on_delete=models.CASCADE, related_name="meetings")
    kind = models.CharField(max_length=15, choices=Kind.choices)
    held_on = models.DateField()
    members = models.JSONField(default=list, help_text='[{"agency": "地域包括支援センター", "name": "…"}]')
    confidentiality_acknowledged = models.BooleanField(default=False)
    notes = models.TextField(blank=True, help_text="要配慮個人情報")
    missing_resources = models.TextField(blank=True, help_text="不足する社会資源")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-held_on"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.held_on}"


class SupportPlan(models.Model):
    """支援プラン: each agency's role; approved at a 重層的支援会議."""

    case = models.ForeignKey(OutreachCase, on_delete=models.CASCADE, related_name="plans")
    goals = models.TextField()
    roles = models.JSONField(default=list, help_text='[{"agency": "社協", "role": "居場所への同行"}]')
    approved_at = models.ForeignKey(CaseMeeting, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"plan {self.case_id} {self.created_at:%Y-%m-%d}"
