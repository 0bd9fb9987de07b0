"""Who may see and do what with meetings, concerns and cases. Decided here; every endpoint and the
sync go through these functions.

- coordinator: everything of the municipality, and the only role that triages and runs cases;
- supervisor: reads everything of the municipality and writes nothing (API and sync);
- outreach_worker: the cases they lead or their corporation leads (and their notes); concerns
  they raised; concerns about households allocated to their corporation;
- commissioner (民生委員): concerns they flagged, and the status (not the content: concern_view) of
  others' concerns in their own 自治会; never case notes;
- admin: nothing here (no people data).

Check-ins and case contacts are never edited or deleted; they are corrected by a superseding
entry: a 民生委員 corrects their own check-ins, an outreach worker the contacts they logged (on a
case they may write), coordinators any (may_correct_check_in / may_correct_contact).
"""

from enum import StrEnum

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import BooleanField, Case, CharField, F, Func, Q, QuerySet, Value, When

from accounts.access import municipality_id_of
from accounts.models import User
from accounts.roles import Role
from backend.errors import Forbidden
from neighborhoods.access import commissioned_neighborhoods, household_scope
from outreach.models import (
    CaseContact,
    CaseMeeting,
    CaseQuerySet,
    Concern,
    Meeting,
    OutreachCase,
    WatchArrangement,
    WatchCheckIn,
    WatchQuerySet,
)

READERS = (Role.COORDINATOR, Role.SUPERVISOR)


class EqualsAny(Func):
    """`value = ANY(array)`, a condition for filter() and Q()."""

    arg_joiner = " = ANY("
    template = "%(expressions)s)"
    output_field = BooleanField()


def require_coordinator(user: User) -> None:
    if user.role != Role.COORDINATOR:
        raise Forbidden("Only coordinators do this.")


def visible_meetings(user: User) -> QuerySet[Meeting]:
    if user.role in READERS:
        return Meeting.objects.filter(municipality_id=municipality_id_of(user))
    if user.role == Role.COMMISSIONER:
        return Meeting.objects.filter(
            municipality_id=municipality_id_of(user), neighborhood_id__in=commissioned_neighborhoods(user)
        )
    return Meeting.objects.none()


def visible_watches(user: User) -> WatchQuerySet:
    if user.role in READERS:
        return WatchArrangement.objects.filter(municipality_id=municipality_id_of(user))
    if user.role == Role.COMMISSIONER:
        return WatchArrangement.objects.filter(
            municipality_id=municipality_id_of(user), household__neighborhood_id__in=commissioned_neighborhoods(user)
        )
    return WatchArrangement.objects.none()


def visible_concerns(user: User) -> QuerySet[Concern]:
    mine = Q(reported_by=user)
    if user.role in READERS:
        return Concern.objects.filter(municipality_id=municipality_id_of(user))
    if user.role == Role.COMMISSIONER:
        # `= ANY(ARRAY(…))`, not `IN (…)`: their 自治会 become one array, so that the planner can
        # read both halves of the OR by their indexes (reporter, 自治会) instead of filtering every
        # concern of the town, newest first, until a page is full.
        own_area = EqualsAny(F("neighborhood_id"), ArraySubquery(commissioned_neighborhoods(user)))
        return Concern.objects.filter(Q(municipality_id=municipality_id_of(user)) & (mine | Q(own_area)))
    if user.role == Role.OUTREACH_WORKER:
        allocated = Q(household__in=_households(user))
        return Concern.objects.filter(Q(municipality_id=municipality_id_of(user)) & (mine | allocated))
    return Concern.objects.none()


class ConcernView(StrEnum):
    """What of a concern a user sees: `full` (categories, place, person, text, case, history with
    who and why), `reporter` (what they flagged and where it stands: their own text, the status
    history without the coordinators' reasons, no case) or `status` (id, status, 自治会 and dates:
    "status, not content")."""

    FULL = "full"
    REPORTER = "reporter"
    STATUS = "status"


def concern_view(user: User, concern: Concern) -> ConcernView:
    """The field set of one visible concern for this user: coordinators, supervisors and the
    corporation working with the household see it whole; a 民生委員 follows their own flags (the
    reporter's view) and sees only the status of others' concerns in their 自治会."""
    if user.role == Role.COMMISSIONER:
        return ConcernView.REPORTER if concern.reported_by_id == user.pk else ConcernView.STATUS
    return ConcernView.FULL


def concern_view_expression(user: User) -> Case | Value:
    """concern_view as SQL, to annotate a list of concerns (``view``) in the same query."""
    if user.role == Role.COMMISSIONER:
        return Case(
            When(reported_by_id=user.pk, then=Value(ConcernView.REPORTER.value)),
            default=Value(ConcernView.STATUS.value), output_field=CharField(),
        )
    return Value(ConcernView.FULL.value, output_field=CharField())


def with_concern_views(user: User, concerns: QuerySet[Concern]) -> QuerySet[Concern]:
    return concerns.annotate(view=concern_view_expression(user))


def may_read_concern_text(user: User, concern: Concern) -> bool:
    """The description of a concern (要配慮): the full view, and its own reporter."""
    return concern_view(user, concern) in (ConcernView.FULL, ConcernView.REPORTER)


def may_raise_concern(user: User) -> bool:
    """気づき are raised by those who work with people: not the read-only supervisor, not the
    administrator (who sees no people data)."""
    return user.role in (Role.COORDINATOR, Role.OUTREACH_WORKER, Role.COMMISSIONER)


def require_concern_raiser(user: User) -> None:
    if not may_raise_concern(user):
        raise Forbidden("Supervisors and administrators do not raise concerns.")


def may_check_in(user: User, watch: WatchArrangement) -> bool:
    """見守り check-ins: coordinators and the 民生委員 of the household's 自治会 (the watch must
    already be visible to the user)."""
    return user.role in (Role.COORDINATOR, Role.COMMISSIONER)


def may_correct_check_in(user: User, watch: WatchArrangement, entry: WatchCheckIn) -> bool:
    """Correcting or retracting a check-in (a new entry that supersedes it): whoever may record
    check-ins on the 見守り, and of them a 民生委員 only their own entries; coordinators any."""
    if not may_check_in(user, watch):
        return False
    return user.role == Role.COORDINATOR or entry.recorded_by_id == user.pk


def may_correct_contact(user: User, case: OutreachCase, entry: CaseContact) -> bool:
    """Correcting or retracting a case contact: whoever may log contacts on the case, and of them
    an outreach worker only the contacts they logged; coordinators any."""
    if not may_write_case(user, case):
        return False
    return user.role == Role.COORDINATOR or entry.by_id == user.pk


def visible_cases(user: User) -> CaseQuerySet:
    if user.role in READERS:
        return OutreachCase.objects.filter(municipality_id=municipality_id_of(user))
    if user.role == Role.OUTREACH_WORKER:
        return OutreachCase.objects.filter(
            Q(municipality_id=municipality_id_of(user))
            & (Q(lead_worker=user) | Q(lead_partner_id=user.partner_organization_id))
        )
    return OutreachCase.objects.none()


def may_write_case(user: User, case: OutreachCase) -> bool:
    """Coordinators run cases; the lead worker and their corporation log contacts."""
    if user.role == Role.COORDINATOR:
        return True
    return user.role == Role.OUTREACH_WORKER and (
        case.lead_worker_id == user.pk or case.lead_partner_id == user.partner_organization_id
    )


def _households(user: User):
    from neighborhoods.models import Household

    return Household.objects.filter(household_scope(user)).values("pk")


def concern_basis(user: User) -> str:
    return f"role:{user.role}"


# --- case meetings as a list (支援会議 / 重層的支援会議) -------------------------------------------------
# The list carries no notes, no member names and no case title, so reading it is not a read of
# sensitive detail (no audit row per item); a meeting's content stays behind the audited case.


def may_list_case_meetings(user: User) -> bool:
    return user.role in READERS


def visible_case_meetings(user: User) -> QuerySet[CaseMeeting]:
    if may_list_case_meetings(user):
        return CaseMeeting.objects.filter(case__municipality_id=municipality_id_of(user))
    return CaseMeeting.objects.none()


def require_case_meeting_lister(user: User) -> None:
    if not may_list_case_meetings(user):
        raise Forbidden("Coordinators and supervisors list case meetings.")
