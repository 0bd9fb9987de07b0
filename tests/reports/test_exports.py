"""Exports through the API: what the files hold (lists and reports, CSV in UTF-8 with BOM or CP932,
XLSX), who may export what, jobs that belong to their requester, expiry, audit, failure.

Jobs run synchronously once the request's transaction would commit (`export()` below)."""

import csv
import datetime as dt
import io
import uuid
from urllib.parse import quote
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from accounts.models import User
from accounts.roles import Role
from audit.models import AuditEvent
from outreach.models import Concern, OutreachCase
from reports import exports
from reports.fiscal import fiscal_year_report, fiscal_year_tables, wareki_fiscal_year
from reports.models import ExportJob
from reports.tasks import expire_exports_task, run_export_task
from tests import factories
from tests.conftest import ApiClient
from visits.models import VisitRecord

JST = ZoneInfo("Asia/Tokyo")
YEAR = 2025  # 令和7年度: 2025-04-01 … 2026-03-31
pytestmark = pytest.mark.django_db


def at(y, m, d, hh=10, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=JST)


@pytest.fixture(autouse=True)
def exports_root(settings, tmp_path):
    settings.EXPORTS_ROOT = tmp_path / "exports"
    return settings.EXPORTS_ROOT


@pytest.fixture
def export(django_capture_on_commit_callbacks):
    """POST /exports as `client`, run the job as the cluster would, and answer (POST response,
    job as GET answers it after the run)."""

    def run(client, **body):
        with django_capture_on_commit_callbacks(execute=True):
            posted = client.post("exports", body)
        job = client.get(f"exports/{posted.json()['id']}").json() if posted.status_code == 202 else None
        return posted, job

    return run


def download(client, job) -> tuple[object, bytes]:
    r = client.get(job["download"] or f"exports/{job['id']}/file")
    # Reading the stream to its end closes the file (as the test client does a WSGI server's close()).
    return r, b"".join(r.streaming_content) if r.status_code == 200 else r.content


def csv_rows(data: bytes, encoding: str = "utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def _record(town, outcome, when, supersedes=None, hh=None):
    return VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=town.municipality, household=hh or town.household,
        worker=town.users["outreach_worker"], outcome=outcome, visited_at=when, supersedes=supersedes,
        notes="玄関先で話した内容（要配慮）", met_person="本人",
    )


@pytest.fixture
def visits(town, other_town):
    """The town's visit records around 令和7年度 (its first and last minute, Asia/Tokyo), one
    corrected; a worker whose name CP932 cannot hold entirely; a record of the other town."""
    worker = town.users["outreach_worker"]
    User.objects.filter(pk=worker.pk).update(display_name="𠮷田〜花子")
    _record(town, "met", at(2025, 3, 31, 23, 59))  # the year before
    first = _record(town, "absent", at(2025, 4, 1, 0, 0))
    wrong = _record(town, "absent", at(2025, 6, 2, 10, 0))
    fixed = _record(town, "met", at(2025, 6, 2, 10, 5), supersedes=wrong)
    last = _record(town, "refused", at(2026, 3, 31, 23, 59))
    _record(town, "met", at(2026, 4, 1, 0, 0))  # the year after
    _record(other_town, "met", at(2025, 7, 1))
    return [first, fixed, last]


# --- lists ---------------------------------------------------------------------------------------


def test_visits_csv_is_utf8_with_bom_crlf_and_japanese_headers(town, visits, export):
    client = town.client("coordinator")
    posted, job = export(client, kind="visits", format="csv", fiscal_year=YEAR)
    assert posted.status_code == 202, posted.content
    assert posted.json()["status"] == "queued"
    assert job["status"] == "done" and job["progress"] == 100, job
    assert job["rows"] == len(visits) and job["encoding"] == "utf-8-sig"
    assert job["filename"] == f"{wareki_fiscal_year(YEAR)}_訪問一覧.csv" == "令和7年度_訪問一覧.csv"
    assert job["download"] == f"/api/v1/exports/{job['id']}/file"

    r, data = download(client, job)
    assert r.status_code == 200
    assert r["Content-Type"] == "text/csv; charset=utf-8"
    assert r["Content-Disposition"] == (
        f"attachment; filename=\"FY{YEAR}_visits.csv\"; filename*=UTF-8''{quote('令和7年度_訪問一覧.csv')}"
    )
    assert int(r["Content-Length"]) == job["size_bytes"] == len(data)
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == len(visits) + 1 and b"\n" not in data.replace(b"\r\n", b"")
    rows = csv_rows(data)
    assert rows[0] == exports.VISIT_HEADERS
    hood, hh = town.neighborhood, town.household
    assert [r[0] for r in rows[1:]] == ["2025/04/01 00:00", "2025/06/02 10:05", "2026/03/31 23:59"]
    assert rows[1][1:7] == [hood.code, hood.name, hh.external_id, town.partner.name, "𠮷田〜花子", "不在"]
    assert [(r[6], r[7]) for r in rows[1:]] == [("不在", ""), ("面談", "訂正"), ("拒否", "")]
    assert "玄関先" not in data.decode("utf-8-sig") and "本人" not in data.decode("utf-8-sig")


def test_cp932_replaces_what_it_cannot_hold_with_geta_and_counts_it(town, visits, export):
    client = town.client("coordinator")
    _posted, job = export(client, kind="visits", format="csv", encoding="cp932", fiscal_year=YEAR)
    assert job["status"] == "done", job
    r, data = download(client, job)
    assert r["Content-Type"] == "text/csv; charset=Shift_JIS"
    assert not data.startswith(b"\xef\xbb\xbf")
    rows = csv_rows(data, "cp932")
    assert rows[0] == exports.VISIT_HEADERS
    # 𠮷 is not in CP932: 〓, once per row; 〜 (WAVE DASH) is written as CP932's ～, not replaced
    assert {r[5] for r in rows[1:]} == {"〓田～花子"}
    assert job["replaced_characters"] == len(visits)


def test_visits_xlsx_has_a_bold_frozen_header_and_real_dates(town, visits, export):
    client = town.client("coordinator")
    _posted, job = export(client, kind="visits", format="xlsx", encoding="cp932", fiscal_year=YEAR)
    assert job["status"] == "done" and job["encoding"] is None and job["filename"] == "令和7年度_訪問一覧.xlsx"
    r, data = download(client, job)
    assert r["Content-Type"] == exports.XLSX_MEDIA_TYPE
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["令和7年度 訪問一覧"]
    sheet = book.active
    assert [c.value for c in sheet[1]] == exports.VISIT_HEADERS
    assert all(c.font.b for c in sheet[1]) and sheet.freeze_panes == "A2"
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    # Excel has no time zones: the times as Asia/Tokyo shows them
    assert [v[0] for v in values] == [at(2025, 4, 1, 0, 0).replace(tzinfo=None), at(2025, 6, 2, 10, 5).replace(tzinfo=None),
                                      at(2026, 3, 31, 23, 59).replace(tzinfo=None)]
    assert values[1][4:8] == [town.partner.name, "𠮷田〜花子", "面談", "訂正"]


def test_concerns_list_has_labels_and_no_description(town, other_town, export):
    def concern(t, created, **fields):
        c = Concern.objects.create(
            municipality=t.municipality, source="commissioner", household=t.household, neighborhood=t.neighborhood,
            reported_by=t.users["commissioner"], description="夜中に大声（要配慮）", **fields,
        )
        Concern.objects.filter(pk=c.pk).update(created_at=created)

    concern(town, at(2025, 4, 1, 0, 0), categories=["living_alone", "8050"], urgency="high", status="referred",
            referred_to="elderly")
    concern(town, at(2025, 3, 31, 23, 59), categories=["poverty"])
    concern(other_town, at(2025, 5, 1), categories=["poverty"])
    client = town.client("coordinator")
    _posted, job = export(client, kind="concerns", format="csv", fiscal_year=YEAR)
    _r, data = download(client, job)
    rows = csv_rows(data)
    assert rows == [exports.CONCERN_HEADERS,
                    ["2025/04/01", "民生委員", "独居・8050", "高", "つなぎ済", "高齢", town.neighborhood.name]]
    assert job["rows"] == 1 and "夜中" not in data.decode("utf-8-sig")


def test_cases_open_on_any_day_of_the_year_without_title_or_notes(town, export):
    def case(opened, closed=None, **fields):
        return OutreachCase.objects.create(
            municipality=town.municipality, household=town.household, title="長期ひきこもり (50代男性)",
            notes="家族の事情（要配慮）", opened_on=opened, next_contact_due=opened + dt.timedelta(days=14),
            closed_on=closed, status="closed" if closed else "open", lead_partner=town.partner, **fields,
        )

    case(dt.date(2024, 5, 1), closed=dt.date(2025, 4, 1), closure_reason="resolved")  # closed on the first day
    case(dt.date(2024, 5, 1), closed=dt.date(2025, 3, 31), closure_reason="moved")  # closed the day before
    case(dt.date(2026, 3, 31), consent="consented", consent_date=dt.date(2026, 3, 31), stage="contact")
    case(dt.date(2026, 4, 1))  # the year after
    client = town.client("coordinator")
    _posted, job = export(client, kind="cases", format="csv", fiscal_year=YEAR)
    _r, data = download(client, job)
    rows = csv_rows(data)
    assert rows[0] == exports.CASE_HEADERS
    assert rows[1][:7] == ["2024/05/01", "終結", "未接触", "同意なし", "", "2025/04/01", "主訴解消"]
    assert rows[2][:5] == ["2026/03/31", "支援中", "接触できた", "重層的支援会議での共有に同意", "2026/03/31"]
    assert rows[2][7:9] == [town.partner.name, town.neighborhood.name]
    assert len(rows) == 3 and job["rows"] == 2
    text = data.decode("utf-8-sig")
    assert "ひきこもり" not in text and "家族" not in text


# --- reports -------------------------------------------------------------------------------------


def test_fiscal_year_report_csv_is_one_file_of_titled_tables(town, visits, export):
    client = town.client("coordinator")
    _posted, job = export(client, kind="fiscal_year_report", format="csv", fiscal_year=YEAR)
    assert job["status"] == "done", job
    assert job["filename"] == "令和7年度_年度報告.csv" and job["public"] is False
    _r, data = download(client, job)
    rows = csv_rows(data)
    assert rows[0] == ["令和7年度 年度報告"]
    expected = fiscal_year_tables(fiscal_year_report(municipality_id=town.municipality.id, year=YEAR))
    titles = [r[0][2:] for r in rows if r and r[0].startswith("■ ")]
    assert titles == [t.title for t in expected]
    monthly = next(t for t in expected if t.title == "世帯訪問調査 月別")
    start = rows.index(["■ 世帯訪問調査 月別"])
    assert rows[start + 1] == list(monthly.headers)
    body = rows[start + 2: start + 2 + len(list(monthly.rows))]
    assert body == [[str(v) if v is not None else "" for v in row] for row in monthly.rows]
    assert rows[start + 2 + len(body)] == []  # a blank row after each table
    assert job["rows"] == sum(len(list(t.rows)) for t in expected)


def test_a_supervisors_report_export_is_always_public(town, visits, export):
    client = town.client("supervisor")
    posted, job = export(client, kind="fiscal_year_report", format="xlsx", fiscal_year=YEAR, public=False)
    assert posted.status_code == 202, posted.content
    assert job["public"] is True and job["filename"] == "令和7年度_年度報告_公開用.xlsx"
    _r, data = download(client, job)
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames[0] == "表紙"
    assert book["表紙"]["A1"].value == "令和7年度 年度報告"
    assert any("未満の値は秘匿" in (c.value or "") for c in book["表紙"]["A"])
    names = book.sheetnames[1:]
    assert len(names) == len(set(n.casefold() for n in names)) and all(len(n) <= 31 for n in names)
    public = fiscal_year_tables(fiscal_year_report(municipality_id=town.municipality.id, year=YEAR, public=True))
    assert names == [t.title for t in public]
    visits_total = book["世帯訪問調査 合計"]
    assert [c.value for c in visits_total[1]] == list(public[1].headers)
    # small cells suppressed: as the public report says, an empty cell where it has null
    assert [c.value for c in visits_total[2]] == next(iter(public[1].rows))


def test_corporation_report_of_a_campaign(town, export):
    client = town.client("coordinator")
    posted, job = export(client, kind="corporation_report", format="csv", campaign=town.campaign.id)
    assert posted.status_code == 202, posted.content
    assert job["status"] == "done", job
    fy = wareki_fiscal_year(town.campaign.fiscal_year)
    assert job["filename"] == f"{fy}_法人別報告_{town.campaign.name}.csv"
    _r, data = download(client, job)
    rows = csv_rows(data)
    assert rows[0] == [f"{fy} 法人別報告"] and rows[1] == [f"世帯訪問調査: {town.campaign.name}"]
    assert any(r and r[0].startswith("■ ") for r in rows)


def test_another_municipalitys_campaign_is_404(town, other_town, export):
    posted, _job = export(town.client("coordinator"), kind="corporation_report", format="csv",
                          campaign=other_town.campaign.id)
    assert posted.status_code == 404 and posted.json()["error"]["code"] == "not_found"
    assert not ExportJob.objects.exists()


# --- who may export what -------------------------------------------------------------------------

REPORTS = {"fiscal_year_report": {"fiscal_year": YEAR}, "corporation_report": {"fiscal_year": YEAR}}
LISTS = {kind: {"fiscal_year": YEAR} for kind in ("visits", "concerns", "cases")}
MAY = {
    Role.COORDINATOR: set(REPORTS) | set(LISTS),
    Role.SUPERVISOR: set(REPORTS),
    Role.OUTREACH_WORKER: set(),
    Role.COMMISSIONER: set(),
    Role.ADMIN: set(),
}


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_who_may_export_what(town, role):
    client = town.client(role)
    for kind, params in {**REPORTS, **LISTS}.items():
        r = client.post("exports", {"kind": kind, "format": "csv", **params})
        expected = 202 if kind in MAY[Role(role)] else 403
        assert r.status_code == expected, (role, kind, r.content)
        if expected == 403:
            assert r.json()["error"]["code"] == "forbidden"
    listed = client.get("exports")
    assert listed.status_code == (200 if MAY[Role(role)] else 403)
    if listed.status_code == 200:
        assert listed.json()["count"] == len(MAY[Role(role)])
    assert ExportJob.objects.filter(requested_by=town.users[role]).count() == len(MAY[Role(role)])


@pytest.mark.parametrize(("body", "loc"), [
    ({"kind": "households", "format": "csv", "fiscal_year": YEAR}, ["body", "kind"]),
    ({"kind": "visits", "format": "pdf", "fiscal_year": YEAR}, ["body", "format"]),
    ({"kind": "visits", "format": "csv", "encoding": "euc-jp", "fiscal_year": YEAR}, ["body", "encoding"]),
    ({"kind": "visits", "format": "csv", "fiscal_year": 1999}, ["body", "fiscal_year"]),
    ({"kind": "visits", "format": "csv", "fiscal_year": "2025"}, ["body", "fiscal_year"]),
    ({"kind": "visits", "format": "csv"}, ["body", "fiscal_year"]),
    ({"kind": "visits", "format": "csv", "fiscal_year": YEAR, "campaign": 1}, ["body", "campaign"]),
    ({"kind": "fiscal_year_report", "format": "csv", "fiscal_year": None}, ["body", "fiscal_year"]),
    ({"kind": "corporation_report", "format": "csv"}, ["body", "campaign"]),
    ({"kind": "visits", "format": "csv", "fiscal_year": YEAR, "public": "yes"}, ["body", "public"]),
    ({"kind": "visits", "format": "csv", "fiscal_year": YEAR, "columns": ["notes"]}, ["body", "columns"]),
])
def test_invalid_requests_are_422_naming_the_field(town, body, loc):
    r = town.client("coordinator").post("exports", body)
    assert r.status_code == 422, r.content
    assert loc in [d["loc"] for d in r.json()["error"]["details"]]
    assert not ExportJob.objects.exists()


def test_a_fiscal_year_after_the_next_is_refused(town):
    from django.utils import timezone

    from backend.dates import fiscal_year_of

    next_year = fiscal_year_of(timezone.localdate()) + 1
    client = town.client("coordinator")
    assert client.post("exports", {"kind": "concerns", "format": "csv", "fiscal_year": next_year}).status_code == 202
    r = client.post("exports", {"kind": "concerns", "format": "csv", "fiscal_year": next_year + 1})
    assert r.status_code == 422 and ["body", "fiscal_year"] in [d["loc"] for d in r.json()["error"]["details"]]


def test_a_job_is_its_requesters_alone(town, other_town, visits, export):
    _posted, job = export(town.client("coordinator"), kind="visits", format="csv", fiscal_year=YEAR)
    colleague = factories.user(town.municipality, Role.COORDINATOR)
    colleague_client = ApiClient(factories.token_for(colleague))
    for client in (colleague_client, town.client("supervisor"), other_town.client("coordinator")):
        for path in (f"exports/{job['id']}", f"exports/{job['id']}/file"):
            r = client.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path
        assert client.get("exports").json()["count"] == 0


def test_a_list_is_not_downloaded_once_its_requester_is_no_longer_a_coordinator(town, visits, export):
    client = town.client("coordinator")
    _posted, job = export(client, kind="visits", format="csv", fiscal_year=YEAR)
    User.objects.filter(pk=town.users["coordinator"].pk).update(role=Role.SUPERVISOR)
    r = client.get(f"exports/{job['id']}/file")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


# --- jobs: progress, expiry, audit, failure ------------------------------------------------------


def test_the_file_is_409_until_done(town, visits):
    client = town.client("coordinator")
    body = {"kind": "visits", "format": "csv", "encoding": None, "fiscal_year": YEAR, "campaign": None}
    job = client.post("exports", body).json()  # not run
    assert job["download"] is None and job["progress"] == 0
    assert job["encoding"] == "utf-8-sig"  # null: the default
    r = client.get(f"exports/{job['id']}/file")
    assert r.status_code == 409 and r.json()["error"]["code"] == "export_not_ready"


def test_expired_exports_lose_their_file_and_answer_410(town, other_town, visits, export, exports_root):
    client = town.client("coordinator")
    _posted, job = export(client, kind="visits", format="csv", fiscal_year=YEAR)
    _posted, kept = export(client, kind="visits", format="xlsx", fiscal_year=YEAR)
    _posted, theirs = export(other_town.client("coordinator"), kind="cases", format="csv", fiscal_year=YEAR)
    files = {j["id"]: exports.file_path(ExportJob.objects.get(pk=j["id"])) for j in (job, kept, theirs)}
    assert all(f.exists() for f in files.values())
    past = dt.datetime.now(tz=JST) - dt.timedelta(minutes=1)
    ExportJob.objects.filter(pk__in=[job["id"], theirs["id"]]).update(expires_at=past)

    # past its time, not swept yet: expired for its reader already
    assert client.get(f"exports/{job['id']}").json()["status"] == "expired"
    assert expire_exports_task() == {town.municipality.id: 1, other_town.municipality.id: 1}
    assert not files[job["id"]].exists() and not files[theirs["id"]].exists() and files[kept["id"]].exists()
    now = client.get(f"exports/{job['id']}").json()
    assert now["status"] == "expired" and now["download"] is None
    r = client.get(f"exports/{job['id']}/file")
    assert r.status_code == 410 and r.json()["error"]["code"] == "export_expired"
    assert client.get(f"exports/{kept['id']}/file").status_code == 200
    assert expire_exports_task() == {}  # nothing left to do


def test_every_export_and_download_is_audited(town, visits, export):
    client = town.client("coordinator")
    _posted, job = export(client, kind="visits", format="csv", encoding="cp932", fiscal_year=YEAR)
    download(client, job)
    download(client, job)
    events = list(AuditEvent.objects.filter(action="export", object_id=job["id"]).order_by("chain_seq"))
    assert [e.detail["event"] for e in events] == ["written", "downloaded", "downloaded"]
    coordinator = town.users["coordinator"]
    for e in events:
        assert (e.actor_id, e.object_type, e.basis) == (coordinator.pk, "reports.exportjob", "role:coordinator")
        assert e.detail["kind"] == "visits" and e.detail["rows"] == len(visits)
        assert e.detail["params"]["fiscal_year"] == YEAR and e.detail["format"] == "csv"
        assert e.detail["public"] is False and e.detail["replaced_characters"] == len(visits)
    assert events[1].device_token_id is not None


def test_a_job_runs_once(town, visits, export):
    _posted, job = export(town.client("coordinator"), kind="visits", format="csv", fiscal_year=YEAR)
    assert run_export_task(job["id"], town.municipality.id) == {"skipped": True}
    assert AuditEvent.objects.filter(action="export", object_id=job["id"]).count() == 1


def test_a_failed_export_says_so_and_leaves_no_file(town, visits, export, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    settings.EXPORTS_ROOT = blocker  # the municipality's folder cannot be made
    client = town.client("coordinator")
    _posted, job = export(client, kind="visits", format="xlsx", fiscal_year=YEAR)
    assert job["status"] == "failed" and job["download"] is None
    assert "エラーID" in job["error"] and "Traceback" not in job["error"] and "not-a-folder" not in job["error"]
    r = client.get(f"exports/{job['id']}/file")
    assert r.status_code == 409 and r.json()["error"]["code"] == "export_failed"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["not-a-folder"]
    assert not AuditEvent.objects.filter(action="export", object_id=job["id"]).exists()
