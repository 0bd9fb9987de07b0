"""manage.py import_users: Japanese or English headers, UTF-8 or CP932, all or nothing with errors
naming file and line, idempotent, set-password links printed or written to a private new file."""

import io
import os
import re
import stat
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts.models import User
from accounts.roles import Role
from tests import factories

JAPANESE_HEADER = "ユーザー名,氏名,役割,法人コード,自治会コード,メール"
ENGLISH_HEADER = "username,display_name,role,corporation,neighborhoods,email"



@pytest.fixture
def second_hood(town):
    return factories.neighborhood(town.municipality, code="K-02", name="東自治会")


def _write(tmp_path, lines: list[str], encoding: str = "utf-8", name: str = "users.csv"):
    path = tmp_path / name
    path.write_bytes("\r\n".join(lines).encode(encoding) + b"\r\n")
    return path


def _run(town, path, *args) -> str:
    out = io.StringIO()
    call_command("import_users", str(path), "--municipality", town.municipality.code, *args, stdout=out)
    return out.getvalue()


def _refused(town, path, *args) -> str:
    before = _users(town)
    with pytest.raises(CommandError) as caught:
        _run(town, path, *args)
    assert _users(town) == before  # nothing half-written
    return str(caught.value)


def _users(town) -> list:
    return list(User.objects.filter(municipality=town.municipality).order_by("username").values_list(
        "username", "display_name", "role", "email", "partner_organization_id", "password", "is_active"))


def _town_rows(town, second_hood) -> list[str]:
    return [
        JAPANESE_HEADER,
        f"yamane,山根 和子,民生委員,,{town.neighborhood.code}・{second_hood.code},",
        f"ｔａｎａｋａ,田中 一郎,訪問員,{town.partner.code},,tanaka@example.jp",
        "kawai,河合 由美,コーディネーター,,,",
        "ohno,大野 進,管理者,,,ohno@example.jp",
        "ikeda,池田 聡,supervisor,,,",
    ]


def _links(output: str) -> dict[str, str]:
    return dict(re.findall(r"^  (\S+) \(.*?\) (http\S+)", output, flags=re.M))


def test_japanese_headers_in_cp932_create_users_without_passwords_and_print_links(town, second_hood, tmp_path):
    output = _run(town, _write(tmp_path, _town_rows(town, second_hood), "cp932"))
    assert "users.csv (cp932): 5 rows" in output
    assert "5 created, 0 updated, 0 unchanged" in output
    created = {u.username: u for u in User.objects.filter(username__in=["yamane", "tanaka", "kawai", "ohno", "ikeda"])}
    assert {name: u.role for name, u in created.items()} == {
        "yamane": Role.COMMISSIONER, "tanaka": Role.OUTREACH_WORKER, "kawai": Role.COORDINATOR, "ohno": Role.ADMIN,
        "ikeda": Role.SUPERVISOR,
    }
    assert {u.municipality_id for u in created.values()} == {town.municipality.id}
    assert not any(u.has_usable_password() for u in created.values())
    assert sorted(h.code for h in created["yamane"].neighborhoods.all()) == sorted([town.neighborhood.code, "K-02"])
    assert created["tanaka"].partner_organization_id == town.partner.id
    assert (created["tanaka"].email, created["tanaka"].display_name) == ("tanaka@example.jp", "田中 一郎")
    links = _links(output)
    assert set(links) == set(created)
    # a printed link works: it sets the password and the user can log in
    client = Client()
    form = client.get(client.get(urlsplit(links["yamane"]).path)["Location"])
    assert form.status_code == 200
    client.post(form.wsgi_request.path, {"new_password1": "umi-to-yama-2026", "new_password2": "umi-to-yama-2026"})
    assert User.objects.get(username="yamane").check_password("umi-to-yama-2026")


def test_english_headers_and_role_codes_in_utf8(town, tmp_path):
    path = _write(tmp_path, [ENGLISH_HEADER, f"w1,Worker One,outreach_worker,{town.partner.code},,",
                             f"c1,Commissioner One,commissioner,,{town.neighborhood.code},c1@example.jp"], "utf-8-sig")
    output = _run(town, path)
    assert "2 created" in output
    assert User.objects.get(username="c1").neighborhoods.get() == town.neighborhood


def test_a_rerun_changes_nothing_and_an_edited_row_updates_but_never_the_password(town, second_hood, tmp_path):
    rows = _town_rows(town, second_hood)
    _run(town, _write(tmp_path, rows))
    yamane = User.objects.get(username="yamane")
    yamane.set_password("umi-to-yama-2026")
    yamane.save(update_fields=["password"])
    before = _users(town)
    output = _run(town, _write(tmp_path, rows, name="again.csv"))
    assert "0 created, 0 updated, 5 unchanged" in output
    assert _users(town) == before
    assert set(_links(output)) == {"tanaka", "kawai", "ohno", "ikeda"}  # not yamane: she chose a password

    rows[1] = f"yamane,山根 和子,民生委員,,{second_hood.code},yamane@example.jp"
    rows[3] = f"kawai,河合 由美,訪問員,{town.partner.code},,"
    output = _run(town, _write(tmp_path, rows, name="edited.csv"))
    assert "0 created, 2 updated, 3 unchanged" in output
    yamane.refresh_from_db()
    assert yamane.check_password("umi-to-yama-2026")
    assert (yamane.email, [h.code for h in yamane.neighborhoods.all()]) == ("yamane@example.jp", ["K-02"])
    kawai = User.objects.get(username="kawai")
    assert (kawai.role, kawai.partner_organization_id) == (Role.OUTREACH_WORKER, town.partner.id)


@pytest.mark.parametrize(("row", "message"), [
    ("kimura,木村,部長,,,", r"users\.csv:3: 役割: unknown role '部長'"),
    ("kimura,木村,訪問員,,,", r"users\.csv:3: 法人コード: an outreach worker \(訪問員\) needs a corporation code"),
    ("kimura,木村,訪問員,no-such-corp,,", r"users\.csv:3: 法人コード: no corporation with code 'no-such-corp'"),
    ("kimura,木村,民生委員,,,", r"users\.csv:3: 自治会コード: a 民生委員 \(commissioner\) needs at least one 自治会 code"),
    ("kimura,木村,民生委員,,HOOD;X-9、X-10,", r"users\.csv:3: 自治会コード: no 自治会 with code 'X-9', 'X-10'"),
    ("kimura,木村,監督者,PARTNER,,", r"users\.csv:3: 法人コード: only an outreach worker"),
    ("yamada,山田 二郎,監督者,,,", r"users\.csv:3: ユーザー名: 'yamada' is given twice \(first on line 2\)"),
    ("kimura,木村,監督者,,,kimura@", r"users\.csv:3: メール: 'kimura@' is not an email address"),
    ("kimura,木\x07村,監督者,,,", r"users\.csv:3: 氏名: contains a control or bidirectional-formatting character \(U\+0007\)"),
    ("kimura,\u202e木村,監督者,,,", r"users\.csv:3: 氏名: contains a control"),
    ("kimu ra,木村,監督者,,,", r"users\.csv:3: ユーザー名: 'kimu ra': only ASCII letters"),
    ("kimura,,監督者,,,", r"users\.csv:3: 氏名: is required"),
    ("OTHER,木村,監督者,,,", r"users\.csv:3: ユーザー名: '[a-z]+-\d+' belongs to another municipality's account"),
])
def test_bad_rows_are_refused_with_file_and_line_and_nothing_is_written(town, other_town, tmp_path, row, message):
    row = (row.replace("HOOD", town.neighborhood.code).replace("PARTNER", town.partner.code)
           .replace("OTHER", other_town.users["supervisor"].username)
           .replace("\\x07", "\x07").replace("\\u202e", "\u202e"))
    path = _write(tmp_path, [JAPANESE_HEADER, "yamada,山田 一郎,監督者,,,", row])
    error = _refused(town, path)
    assert re.search(message, error), error
    assert "nothing was written" in error
    assert not User.objects.filter(username="yamada").exists()  # the good line 2 is not written either


def test_every_problem_of_a_file_is_told_at_once(town, tmp_path):
    path = _write(tmp_path, [ENGLISH_HEADER, "a,A,boss,,,", "b,B,commissioner,,,", "c,C,supervisor,,,x@"])
    error = _refused(town, path)
    assert "3 problems" in error
    assert [line for line in ("users.csv:2:", "users.csv:3:", "users.csv:4:") if line in error] == [
        "users.csv:2:", "users.csv:3:", "users.csv:4:"]


def test_a_missing_required_column_is_named(town, tmp_path):
    error = _refused(town, _write(tmp_path, ["ユーザー名,氏名", "a,A"]))
    assert re.search(r"users\.csv:1: missing column\(s\): role \(role / 役割 / ロール\)", error), error


def test_an_inactive_user_elsewhere_still_holds_the_name(town, other_town, tmp_path):
    holder = other_town.users["commissioner"]
    holder.is_active = False
    holder.save(update_fields=["is_active"])
    error = _refused(town, _write(tmp_path, [ENGLISH_HEADER, f"{holder.username},X,supervisor,,,"]))
    assert f"users.csv:2: username: '{holder.username}' belongs to another municipality's account" in error


def test_links_file_is_private_and_never_overwritten(town, second_hood, tmp_path):
    links_path = tmp_path / "links.csv"
    output = _run(town, _write(tmp_path, _town_rows(town, second_hood)), "--links-file", str(links_path))
    assert f"set-password links: {links_path}" in output
    assert "http" not in output  # only the path is printed
    assert stat.S_IMODE(os.stat(links_path).st_mode) == 0o600
    lines = links_path.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "username,display_name,set_password_url,expires_at"
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["ikeda", "kawai", "ohno", "tanaka", "yamane"]
    assert all("/account/set-password/" in line for line in lines[1:])

    content = links_path.read_bytes()
    more = _write(tmp_path, [ENGLISH_HEADER, "newbie,New,supervisor,,,"], name="more.csv")
    with pytest.raises(CommandError, match="already exists"):
        _run(town, more, "--links-file", str(links_path))
    assert links_path.read_bytes() == content
    assert not User.objects.filter(username="newbie").exists()  # refused before anything was imported


def test_dry_run_writes_nothing(town, second_hood, tmp_path):
    before = _users(town)
    output = _run(town, _write(tmp_path, _town_rows(town, second_hood)), "--dry-run", "--links-file",
                  str(tmp_path / "links.csv"))
    assert "5 created" in output
    assert "would issue set-password links for: yamane, tanaka, kawai, ohno, ikeda" in output
    assert "dry run: nothing was written" in output
    assert _users(town) == before
    assert not (tmp_path / "links.csv").exists()
    assert "http" not in output


def test_another_municipality_is_untouched_and_its_codes_are_unknown(town, other_town, tmp_path):
    before = _users(other_town)
    error = _refused(town, _write(tmp_path, [
        ENGLISH_HEADER, f"x1,X,outreach_worker,{other_town.partner.code},,",
        f"x2,Y,commissioner,,{other_town.neighborhood.code},"]))
    assert f"users.csv:2: corporation: no corporation with code '{other_town.partner.code}'" in error
    assert f"users.csv:3: neighborhoods: no 自治会 with code '{other_town.neighborhood.code}'" in error
    _run(town, _write(tmp_path, [ENGLISH_HEADER, "x3,Z,supervisor,,,"], name="ok.csv"))
    assert _users(other_town) == before


def test_an_unknown_municipality_is_refused(town, tmp_path):
    with pytest.raises(CommandError, match="No municipality with code '999999'"):
        call_command("import_users", str(_write(tmp_path, [ENGLISH_HEADER])), "--municipality", "999999",
                     stdout=io.StringIO())
