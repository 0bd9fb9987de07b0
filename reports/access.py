"""Who may read and export which report or list: decided here, once.

- The 年度 report and the per-corporation report: coordinators and supervisors. A supervisor always
  gets the public version (small cells suppressed: reports.suppression); a coordinator gets it
  when asking for `public`.
- Exports: the reports as above; the lists of people (visits, concerns, cases) coordinators only;
  a job and its file belong to the user who asked for it.
"""

from django.db.models import QuerySet

from accounts.models import User
from accounts.roles import Role
from backend.errors import Forbidden
from reports.models import ExportJob, ExportKind

REPORT_READERS = frozenset({Role.COORDINATOR, Role.SUPERVISOR})
# Roles that only ever see a report with its small cells suppressed.
PUBLIC_ONLY = frozenset({Role.SUPERVISOR})


def require_report_reader(user: User) -> int:
    """The user's municipality, or 403 for a role that does not read reports."""
    if user.municipality_id is None or user.role not in REPORT_READERS:
        raise Forbidden("Coordinators and supervisors read the reports.")
    return user.municipality_id


def must_be_public(user: User, asked: bool) -> bool:
    """Whether the user's report is the public one (small cells suppressed)."""
    return asked or user.role in PUBLIC_ONLY


# --- exports (reports.exports_api) ----------------------------------------------------------------
# - the reports (年度報告, 法人別報告): coordinators and supervisors; a supervisor's export is always
#   the public one;
# - the lists (訪問一覧, 気づき一覧, 継続的支援一覧): people data, coordinators only;
# - everyone else: nothing here (403). An export job is its requester's alone: another user, of the
#   same municipality too, gets 404; a download asks again whether the requester's role may have it.

LIST_EXPORTERS = frozenset({Role.COORDINATOR})
_REPORT_KINDS = frozenset({ExportKind.FISCAL_YEAR_REPORT, ExportKind.CORPORATION_REPORT})


def may_export(user: User, kind: str) -> bool:
    if user.municipality_id is None:
        return False
    return user.role in (REPORT_READERS if kind in _REPORT_KINDS else LIST_EXPORTERS)


def require_exporter(user: User) -> None:
    """Any export endpoint: 403 for a role that may export nothing."""
    if user.municipality_id is None or user.role not in REPORT_READERS:
        raise Forbidden("Coordinators and supervisors export.")


def require_export(user: User, kind: str) -> None:
    if not may_export(user, kind):
        raise Forbidden("Only coordinators export lists of people." if user.role in REPORT_READERS
                        else "Coordinators and supervisors export.")


def export_is_public(user: User, kind: str, asked: bool) -> bool:
    """Reports: as must_be_public. Lists have no small cells to suppress."""
    return must_be_public(user, asked) if kind in _REPORT_KINDS else False


def visible_export_jobs(user: User) -> QuerySet[ExportJob]:
    if user.municipality_id is None or user.role not in REPORT_READERS:
        return ExportJob.objects.none()
    return ExportJob.objects.filter(municipality_id=user.municipality_id, requested_by=user)


def export_basis(user: User) -> str:
    """Why the user may export: written to the audit log with each export and download."""
    return f"role:{user.role}"
