"""Writes about meetings, concerns and cases. Every status change of a concern is recorded with
who, when and why; invalid transitions are refused (409)."""

import datetime as dt
import uuid
from collections.abc import Iterable

from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from accounts.access import municipality_id_of
from accounts.models import User
from accounts.roles import Role
from backend.dates import require_fact_date
from backend.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.versioning import lock_at_version
from backend.vocabulary import CONCERN_CATEGORIES
from neighborhoods.access import visible_households
from neighborhoods.models import Household, Neighborhood, Resident
from neighborhoods.services import neighborhood_at
from outreach import access
from outreach.models import (
    CaseContact,
    CaseMeeting,
    Concern,
    ConcernTransition,
    Meeting,
    OutreachCase,
    SupportPlan,
    WatchArrangement,
    WatchCheckIn,
    case_overdue_sql,
    watch_overdue_sql,
)

S = Concern.Status
# The concern workflow: new → triaged → watching / referred (つなぐ) / case opened / closed.
TRANSITIONS: dict[str, set[str]] = {
    S.NEW: {S.TRIAGED, S.CLOSED},
    S.TRIAGED: {S.WATCHING, S.REFERRED, S.CASE_OPENED, S.CLOSED},
    S.WATCHING: {S.REFERRED, S.CASE_OPENED, S.CLOSED},
    S.REFERRED: {S.CASE_OPENED, S.CLOSED, S.WATCHING},
    S.CASE_OPENED: {S.CLOSED},
    S.CLOSED: set(),
}


def _status_label(status: str) -> str:
    """A concern status in the users' words: 「終了」 (closed), not an enum member."""
    return f"「{S(status).label}」 ({S(status).value})" if status in S.values else repr(str(status))


def _check_categories(categories: Iterable[str]) -> list[str]:
    categories = list(dict.fromkeys(categories))
    unknown = [c for c in categories if c not in CONCERN_CATEGORIES]
    if unknown:
        raise InvalidInput(f"Unknown concern categories: {', '.join(unknown)}.", details=[{"loc": ["body", "categories"]}])
    if not categories:
        raise InvalidInput("At least one category is needed.", details=[{"loc": ["body", "categories"]}])
    return categories


def _visit_record_for(user: User, visit_record_id, household: Household | None):
    """The visit a concern was noticed at: visible to the user and of the concern's household; any
    other answers the same as an unknown id."""
    from visits.access import visible_visit_records

    visit = None
    if household is not None:
        visit = visible_visit_records(user).filter(pk=visit_record_id, household=household).first()
    if visit is None:
        raise NotFound("No such visit of this household among those you may see.", code="visit_unknown",
                       details=[{"loc": ["body", "visit_record_id"]}])
    return visit


def _household_for(user: User, household_id) -> Household:
    """A household the user may raise a concern about; another municipality's answers as unknown.
    A household since merged into another (a duplicate) stands for the one it was merged into, so
    a concern written offline about it is not lost: it lands where the household's records are now."""
    household = _visible_household(user, household_id)
    if household is not None and household.merged_into_id is not None:
        household = _visible_household(user, household.merged_into_id)
    if household is None:
        raise NotFound("No such household among those you may see.", code="household_unknown")
    return household


def _visible_household(user: User, household_id) -> Household | None:
    household = visible_households(user).filter(pk=household_id).first()
    if household is None and user.role in (Role.COORDINATOR, Role.SUPERVISOR):
        household = Household.objects.filter(municipality_id=municipality_id_of(user), pk=household_id).first()
    return household


@transaction.atomic
def raise_concern(
    *, user: User, source: str, categories: Iterable[str], description: str = "", urgency: str = "normal",
    household_id=None, resident_id=None, pin: Point | None = None, place_description: str = "",
    meeting: Meeting | None = None, visit_record_id=None, source_detail: str = "", concern_id=None,
) -> Concern:
    """気づき: about a known household (and person), or a pin with a description when the household
    is not known yet (matched later). A visit it came from must be one the user may see, of the
    same household."""
    access.require_concern_raiser(user)
    categories = _check_categories(categories)
    household = _household_for(user, household_id) if household_id else None
    visit_record = _visit_record_for(user, visit_record_id, household) if visit_record_id else None
    if household is None and pin is None:
        raise InvalidInput("A concern needs a household or a pin.", details=[{"loc": ["body", "household_id"]}])
    resident = None
    if resident_id:
        if household is None:
            raise InvalidInput("A person needs their household.", details=[{"loc": ["body", "resident_id"]}])
        resident = Resident.objects.filter(pk=resident_id, household=household).first()
        if resident is None:
            raise NotFound("No such person in this household.", code="resident_unknown")
    hood = household.neighborhood if household else neighborhood_at(municipality_id=municipality_id_of(user), point=pin)
    concern = Concern(
        municipality_id=municipality_id_of(user), source=source, source_detail=source_detail, meeting=meeting,
        visit_record=visit_record, reported_by=user, household=household, resident=resident, neighborhood=hood,
        pin=pin, place_description=place_description, categories=categories, urgency=urgency, description=description,
    )
    if concern_id:
        concern.id = concern_id
    concern.full_clean(exclude=["id"])
    concern.save(force_insert=True)
    ConcernTransition.objects.create(concern=concern, from_status="", to_status=S.NEW, reason="raised", by=user)
    return concern


@transaction.atomic
def transition_concern(
    *, concern: Concern, to: str, reason: str, by: User, referred_to: str = "", case: OutreachCase | None = None
) -> Concern:
    locked = Concern.objects.select_for_update().get(pk=concern.pk)
    if not reason.strip():
        raise InvalidInput("Say why (reason).", details=[{"loc": ["body", "reason"]}])
    if to not in TRANSITIONS.get(locked.status, set()):
        allowed = sorted(str(s) for s in TRANSITIONS.get(locked.status, set()))
        onward = "、".join(_status_label(s) for s in allowed) or "nothing (it is closed)"
        raise Conflict(
            f"A 気づき cannot go from {_status_label(locked.status)} to {_status_label(to)}; "
            f"from {_status_label(locked.status)} it can go to {onward}.",
            code="invalid_transition", details={"from": str(locked.status), "to": str(to), "allowed": allowed},
        )
    if to == S.REFERRED and not referred_to:
        raise InvalidInput("Referring needs the counter (referred_to).", details=[{"loc": ["body", "referred_to"]}])
    if to == S.CASE_OPENED and case is None:
        raise Conflict("Open a case for this concern instead (POST /cases with concern_id).", code="needs_case")
    ConcernTransition.objects.create(concern=locked, from_status=locked.status, to_status=to, reason=reason, by=by)
    locked.status = to
    fields = ["status", "version", "updated_at"]
    if to == S.REFERRED:
        locked.referred_to = referred_to
        fields.append("referred_to")
    if case is not None:
        locked.case = case
        fields.append("case")
    locked.version = F("version") + 1
    locked.save(update_fields=fields)
    locked.refresh_from_db()
    return locked


@transaction.atomic
def match_concern(*, concern: Concern, household_id, by: User) -> Concern:
    """A concern raised with a pin is matched to the household once it is known."""
    locked = Concern.objects.select_for_update().get(pk=concern.pk)
    if locked.status == S.CLOSED:
        raise Conflict("The concern is closed.", code="concern_closed")
    household = _household_for(by, household_id)
    locked.household, locked.neighborhood = household, household.neighborhood
    locked.version = F("version") + 1
    locked.save(update_fields=["household", "neighborhood", "version", "updated_at"])
    locked.refresh_from_db()
    return locked


# --- 支え愛連絡会 and 見守り -------------------------------------------------------------------------


@transaction.atomic
def record_meeting(
    *, user: User, neighborhood: Neighborhood, held_on: dt.date, attendees: list[dict], notes: str,
    concerns: list[dict], watches: list[dict],
) -> Meeting:
    meeting = Meeting.objects.create(
        municipality_id=municipality_id_of(user), neighborhood=neighborhood, held_on=held_on, attendees=attendees,
        notes=notes, recorded_by=user,
    )
    for item in concerns:
        raise_concern(user=user, source=Concern.Source.MEETING, meeting=meeting, **item)
    for item in watches:
        add_watch(user=user, meeting=meeting, **item)
    return meeting


@transaction.atomic
def add_watch(
    *, user: User, household_id, watcher_name: str, watcher_role: str, cadence_days: int,
    started_on: dt.date | None = None, notes: str = "", meeting: Meeting | None = None,
) -> WatchArrangement:
    household = _household_for(user, household_id)
    started_on = started_on or timezone.localdate()
    watch = WatchArrangement(
        municipality_id=municipality_id_of(user), meeting=meeting, household=household, watcher_name=watcher_name,
        watcher_role=watcher_role, cadence_days=cadence_days, started_on=started_on,
        next_due=started_on + dt.timedelta(days=cadence_days), notes=notes,
    )
    watch.full_clean()
    watch.save()
    return watch


def _running_watch(watch: WatchArrangement) -> WatchArrangement:
    locked = WatchArrangement.objects.select_for_update().get(pk=watch.pk)
    if locked.ended_on:
        raise Conflict("This 見守り has ended.", code="watch_ended")
    return locked


def _recompute_watch(locked: WatchArrangement) -> None:
    """last_check_in / next_due from the check-ins that stand (corrected and retracted ones do not)."""
    last = locked.check_ins.all().effective().aggregate(last=Max("checked_on"))["last"]
    locked.last_check_in = last
    locked.next_due = (last or locked.started_on) + dt.timedelta(days=locked.cadence_days)
    locked.save(update_fields=["last_check_in", "next_due"])


@transaction.atomic
def check_in(
    *, watch: WatchArrangement, checked_on: dt.date, ok: bool, note: str, by: User, supersedes_id: int | None = None,
    correction_reason: str = "", retract: bool = False,
) -> WatchCheckIn:
    """A 見守り check-in; with `supersedes_id`, a correction of an earlier one (correct_check_in)."""
    if supersedes_id is not None:
        return correct_check_in(watch=watch, check_in_id=supersedes_id, by=by, reason=correction_reason,
                                retract=retract, checked_on=checked_on, ok=ok, note=note)
    if retract or correction_reason:
        raise InvalidInput("Only a correction (supersedes) has a reason or retracts.", details=[{"loc": ["supersedes"]}])
    require_fact_date(checked_on, field="checked_on")
    locked = _running_watch(watch)
    entry = WatchCheckIn.objects.create(arrangement=locked, checked_on=checked_on, ok=ok, note=note, recorded_by=by)
    _recompute_watch(locked)
    return entry


def _refuse_if_corrected(earlier: WatchCheckIn | CaseContact, what: str) -> None:
    """An entry is corrected once; after that its newest correction is the one to correct (409)."""
    newer = type(earlier).objects.filter(supersedes=earlier).values_list("pk", flat=True).first()
    if newer is not None:
        raise Conflict(f"That {what} was already corrected; correct the newest correction instead.",
                       code="already_corrected",
                       details={"superseded_by": str(newer) if isinstance(newer, uuid.UUID) else newer})


def _correction_reason(reason: str) -> str:
    if not reason.strip():
        raise InvalidInput("A correction says why the entry was wrong (reason).", details=[{"loc": ["body", "reason"]}])
    return reason


@transaction.atomic
def correct_check_in(
    *, watch: WatchArrangement, check_in_id: int, by: User, reason: str, retract: bool = False,
    checked_on: dt.date | None = None, ok: bool = True, note: str = "",
) -> WatchCheckIn:
    """Correct a check-in by a new one that supersedes it (with who and why), or retract it; the
    watch's last check-in and due date follow the check-ins that stand. Nothing is edited or deleted.
    Who may: outreach.access.may_correct_check_in."""
    reason = _correction_reason(reason)
    if not retract:
        if checked_on is None:
            raise InvalidInput("A correction gives the check-in's date (checked_on), or retracts it.",
                               details=[{"loc": ["body", "checked_on"]}])
        require_fact_date(checked_on, field="checked_on")
    locked = _running_watch(watch)
    earlier = WatchCheckIn.objects.select_for_update().filter(arrangement=locked, pk=check_in_id).first()
    if earlier is None:
        raise NotFound("No such check-in of this 見守り.", code="check_in_unknown")
    if not access.may_correct_check_in(by, locked, earlier):
        raise Forbidden("A 民生委員 corrects their own check-ins; coordinators correct any.")
    _refuse_if_corrected(earlier, "check-in")
    if retract:
        checked_on, ok, note = earlier.checked_on, earlier.ok, earlier.note
    assert checked_on is not None
    entry = WatchCheckIn.objects.create(
        arrangement=locked, checked_on=checked_on, ok=ok, note=note, recorded_by=by, supersedes=earlier,
        correction_reason=reason, retracted=retract,
    )
    _recompute_watch(locked)
    return entry


# --- cases -------------------------------------------------------------------------------------


@transaction.atomic
def open_case(
    *, by: User, household_id, title: str, cadence_days: int = 14, resident_id=None, lead_partner=None,
    lead_worker: User | None = None, notes: str = "", concern: Concern | None = None, opened_on: dt.date | None = None,
) -> OutreachCase:
    household = _household_for(by, household_id)
    if lead_worker is not None:
        if lead_worker.role != Role.OUTREACH_WORKER or lead_worker.municipality_id != by.municipality_id:
            raise InvalidInput("The lead worker must be an outreach worker.", details=[{"loc": ["body", "lead_worker_id"]}])
        if lead_partner is not None and lead_worker.partner_organization_id != lead_partner.pk:
            raise InvalidInput("The lead worker belongs to another corporation.", code="worker_of_other_partner")
        lead_partner = lead_partner or lead_worker.partner_organization
    resident = Resident.objects.filter(pk=resident_id, household=household).first() if resident_id else None
    if resident_id and resident is None:
        raise NotFound("No such person in this household.", code="resident_unknown")
    opened_on = opened_on or timezone.localdate()
    case = OutreachCase(
        municipality_id=municipality_id_of(by), household=household, resident=resident, title=title,
        lead_partner=lead_partner, lead_worker=lead_worker, cadence_days=cadence_days, opened_on=opened_on,
        next_contact_due=opened_on + dt.timedelta(days=cadence_days), notes=notes,
    )
    case.full_clean()
    case.save()
    if concern is not None:
        if concern.household_id and concern.household_id != household.pk:
            raise InvalidInput("The concern is about another household.", details=[{"loc": ["body", "concern_id"]}])
        transition_concern(concern=concern, to=S.CASE_OPENED, reason=f"case opened: {title}", by=by, case=case)
    return case


def _open_case(case: OutreachCase) -> OutreachCase:
    locked = OutreachCase.objects.select_for_update().get(pk=case.pk)
    if locked.status == OutreachCase.Status.CLOSED:
        raise Conflict("The case is closed; it cannot be changed.", code="case_closed")
    return locked


CASE_EDITABLE = ("title", "cadence_days", "stage", "lead_partner", "lead_worker", "notes")


@transaction.atomic
def update_case(*, case: OutreachCase, changes: dict, base_version: int | None = None) -> OutreachCase:
    locked = _open_case(case)
    # objects is a CaseQuerySet manager, which the Versioned protocol's invariant ClassVar does not match
    lock_at_version(OutreachCase, locked.pk, base_version, "case")  # type: ignore[type-var]
    for name, value in changes.items():
        setattr(locked, name, value)
    if "cadence_days" in changes:
        since = locked.last_contact_on or locked.opened_on
        locked.next_contact_due = since + dt.timedelta(days=locked.cadence_days)
    locked.full_clean()
    locked.version += 1
    locked.save()
    return locked


def _recompute_case_contacts(locked: OutreachCase, *, bump: bool = False) -> None:
    """last_contact_on / next_contact_due from the contacts that stand (corrected and retracted ones
    do not). Logging a contact changes nothing else of the case (the stage is set by hand). The
    version moves when they change, or always (`bump`: a correction), so devices pull the case again."""
    last = locked.contacts.all().effective().aggregate(last=Max("contacted_on"))["last"]
    due = (last or locked.opened_on) + dt.timedelta(days=locked.cadence_days)
    if bump or (last, due) != (locked.last_contact_on, locked.next_contact_due):
        locked.last_contact_on, locked.next_contact_due = last, due
        locked.version += 1
        locked.save(update_fields=["last_contact_on", "next_contact_due", "version", "updated_at"])


def _new_contact(locked: OutreachCase, *, contact_id, **fields) -> CaseContact:
    contact = CaseContact(case=locked, **fields)
    if contact_id:
        contact.id = contact_id
    contact.full_clean(exclude=["id", "supersedes"])
    contact.save(force_insert=True)
    return contact


@transaction.atomic
def log_contact(
    *, case: OutreachCase, by: User, kind: str, contacted_on: dt.date, reached: bool, note: str = "", contact_id=None,
    supersedes_id=None, correction_reason: str = "", retract: bool = False,
) -> CaseContact:
    """A contact of a case; with `supersedes_id`, a correction of an earlier one (correct_contact)."""
    if supersedes_id is not None:
        return correct_contact(case=case, contact_id=supersedes_id, by=by, reason=correction_reason, retract=retract,
                               kind=kind, contacted_on=contacted_on, reached=reached, note=note, new_id=contact_id)
    if retract or correction_reason:
        raise InvalidInput("Only a correction (supersedes) has a reason or retracts.", details=[{"loc": ["supersedes"]}])
    locked = _open_case(case)
    require_fact_date(contacted_on, field="contacted_on")
    contact = _new_contact(locked, contact_id=contact_id, kind=kind, contacted_on=contacted_on, reached=reached,
                           note=note, by=by)
    _recompute_case_contacts(locked)
    return contact


@transaction.atomic
def correct_contact(
    *, case: OutreachCase, contact_id, by: User, reason: str, retract: bool = False, kind: str | None = None,
    contacted_on: dt.date | None = None, reached: bool = False, note: str = "", new_id=None,
) -> CaseContact:
    """Correct a contact by a new one that supersedes it (with who and why), or retract it; the
    case's last contact and due date follow the contacts that stand, and its version moves.
    Who may: outreach.access.may_correct_contact."""
    reason = _correction_reason(reason)
    if not retract:
        if kind is None or contacted_on is None:
            raise InvalidInput("A correction gives the contact's kind and date (kind, contacted_on), or retracts it.",
                               details=[{"loc": ["body", "contacted_on" if kind else "kind"]}])
        require_fact_date(contacted_on, field="contacted_on")
    locked = _open_case(case)
    earlier = CaseContact.objects.select_for_update().filter(case=locked, pk=contact_id).first()
    if earlier is None:
        raise NotFound("No such contact of this case.", code="contact_unknown")
    if not access.may_correct_contact(by, locked, earlier):
        raise Forbidden("An outreach worker corrects the contacts they logged; coordinators correct any.")
    _refuse_if_corrected(earlier, "contact")
    if retract:
        kind, contacted_on, reached, note = earlier.kind, earlier.contacted_on, earlier.reached, earlier.note
    contact = _new_contact(locked, contact_id=new_id, kind=kind, contacted_on=contacted_on, reached=reached, note=note,
                           by=by, supersedes=earlier, correction_reason=reason, retracted=retract)
    _recompute_case_contacts(locked, bump=True)
    return contact


@transaction.atomic
def record_consent(*, case: OutreachCase, consent_date: dt.date, scope: str) -> OutreachCase:
    """The person consented to their information being shared with the 重層的支援会議."""
    require_fact_date(consent_date, field="consent_date")
    locked = _open_case(case)
    if not scope.strip():
        raise InvalidInput("Say what the consent covers (scope).", details=[{"loc": ["body", "scope"]}])
    locked.consent, locked.consent_date, locked.consent_scope = OutreachCase.Consent.CONSENTED, consent_date, scope
    locked.version += 1
    locked.save(update_fields=["consent", "consent_date", "consent_scope", "version", "updated_at"])
    return locked


@transaction.atomic
def hold_case_meeting(
    *, case: OutreachCase, kind: str, held_on: dt.date, members: list[dict], notes: str, by: User,
    missing_resources: str = "", confidentiality_acknowledged: bool = False,
) -> CaseMeeting:
    locked = _open_case(case)
    if kind == CaseMeeting.Kind.MULTI_AGENCY:
        if locked.consent != OutreachCase.Consent.CONSENTED or locked.consent_date is None:
            raise Conflict(
                "A 重層的支援会議 may only discuss a person who consented to sharing; record the consent first "
                "(or hold a 支援会議).", code="consent_required",
            )
        if locked.consent_date > held_on:
            raise Conflict("The consent was given after this meeting date.", code="consent_required")
    elif not confidentiality_acknowledged:
        raise InvalidInput(
            "A 支援会議 shares without consent under art. 106-6: its members' duty of confidentiality must be "
            "acknowledged (confidentiality_acknowledged).",
            details=[{"loc": ["body", "confidentiality_acknowledged"]}],
        )
    return CaseMeeting.objects.create(
        case=locked, kind=kind, held_on=held_on, members=members, notes=notes, missing_resources=missing_resources,
        confidentiality_acknowledged=confidentiality_acknowledged, recorded_by=by,
    )


@transaction.atomic
def add_plan(*, case: OutreachCase, goals: str, roles: list[dict], by: User, approved_meeting_id=None) -> SupportPlan:
    locked = _open_case(case)
    meeting = None
    if approved_meeting_id is not None:
        meeting = CaseMeeting.objects.filter(pk=approved_meeting_id, case=locked, kind=CaseMeeting.Kind.MULTI_AGENCY).first()
        if meeting is None:
            raise InvalidInput("A plan is approved at a 重層的支援会議 of this case.",
                               details=[{"loc": ["body", "approved_meeting_id"]}])
    return SupportPlan.objects.create(case=locked, goals=goals, roles=roles, approved_at=meeting, created_by=by)


@transaction.atomic
def close_case(*, case: OutreachCase, reason: str, evaluation: str, by: User, closed_on: dt.date | None = None) -> OutreachCase:
    locked = _open_case(case)
    if not evaluation.strip():
        raise InvalidInput("Closing a case needs its evaluation.", details=[{"loc": ["body", "evaluation"]}])
    locked.status = OutreachCase.Status.CLOSED
    locked.closure_reason = reason
    locked.evaluation = evaluation
    locked.closed_on = closed_on or timezone.localdate()
    locked.full_clean()
    locked.version += 1
    locked.save()
    for concern in locked.concerns.exclude(status=S.CLOSED):
        transition_concern(concern=concern, to=S.CLOSED, reason=f"case closed: {locked.get_closure_reason_display()}", by=by)
    return locked


# --- the daily sweep ---------------------------------------------------------------------------------

# The rule is outreach.models' (case_overdue_sql / watch_overdue_sql), the one every read uses.
_CASE_RULE = case_overdue_sql("outreach_outreachcase", "%(today)s")
_WATCH_RULE = watch_overdue_sql("outreach_watcharrangement", "%(today)s")
_SWEEP_CASES = f"""
UPDATE outreach_outreachcase
   SET overdue = {_CASE_RULE}
 WHERE overdue IS DISTINCT FROM {_CASE_RULE}
"""  # noqa: S608 - constant fragments, today bound
_SWEEP_WATCHES = f"""
UPDATE outreach_watcharrangement
   SET overdue = {_WATCH_RULE}
 WHERE overdue IS DISTINCT FROM {_WATCH_RULE}
"""  # noqa: S608 - constant fragments, today bound


def sweep_overdue(*, today: dt.date | None = None) -> dict:
    """Record the overdue flag of cases and 見守り as a snapshot (for notifications): one set-based
    UPDATE each, touching only rows whose flag changes, with the same rule the reads compute
    (reads never use the stored flag). Idempotent."""
    params = {"today": today or timezone.localdate()}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SWEEP_CASES, params)
        cases = cursor.rowcount
        cursor.execute(_SWEEP_WATCHES, params)
        watches = cursor.rowcount
    return {"cases_changed": cases, "watches_changed": watches}
