"""manage.py create_municipality against a real database: created, unchanged, --update, --dry-run,
and each refusal with nothing written."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from neighborhoods.models import Municipality

HOKUEI = ["313726", "--prefecture", "鳥取県", "--name", "北栄町", "--name-kana", "ホクエイチョウ"]


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_municipality", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def snapshot() -> list[tuple]:
    return list(Municipality.objects.order_by("code").values_list("code", "prefecture", "name", "name_kana", "created_at"))


@pytest.mark.django_db
def test_creates_the_municipality():
    out, _ = run(*HOKUEI)

    town = Municipality.objects.get(code="313726")
    assert (town.prefecture, town.name, town.name_kana) == ("鳥取県", "北栄町", "ホクエイチョウ")
    assert out == "created: 313726 鳥取県北栄町 (ホクエイチョウ)\n"


@pytest.mark.django_db
def test_the_same_again_is_unchanged_and_writes_nothing():
    run(*HOKUEI)
    before = snapshot()

    out, _ = run(*HOKUEI)
    out_without_kana, _ = run("313726", "--prefecture", "鳥取県", "--name", "北栄町")

    assert out == "unchanged: 313726 鳥取県北栄町 (ホクエイチョウ)\n"
    assert out_without_kana == out  # leaving the reading out keeps it
    assert snapshot() == before


@pytest.mark.django_db
def test_full_width_code_hiragana_and_half_width_reading():
    run("３１３７２６", "--prefecture", "鳥取県", "--name", "北栄町", "--name-kana", "ﾎｸｴｲﾁｮｳ")
    run("313726", "--prefecture", "鳥取県", "--name", "北栄町", "--name-kana", "ほくえいちょう")

    assert list(Municipality.objects.values_list("code", "name_kana")) == [("313726", "ホクエイチョウ")]


@pytest.mark.django_db
def test_a_new_name_needs_update():
    run(*HOKUEI)
    before = snapshot()

    with pytest.raises(CommandError) as refused:
        run("313726", "--prefecture", "鳥取県", "--name", "北栄村")

    assert str(refused.value) == "313726 is already 鳥取県北栄町 (ホクエイチョウ); pass --update to change name to '北栄村'"
    assert snapshot() == before

    out, _ = run("313726", "--prefecture", "鳥取県", "--name", "北栄村", "--name-kana", "ホクエイソン", "--update")

    assert out == (
        "updated: 313726 鳥取県北栄村 (ホクエイソン)\n  name: '北栄町' → '北栄村'\n  name_kana: 'ホクエイチョウ' → 'ホクエイソン'\n"
    )
    town = Municipality.objects.get(code="313726")
    assert (town.name, town.name_kana, town.created_at) == ("北栄村", "ホクエイソン", before[0][4])


@pytest.mark.django_db
def test_dry_run_writes_nothing():
    out, _ = run(*HOKUEI, "--dry-run")

    assert out == "would be created: 313726 鳥取県北栄町 (ホクエイチョウ)\ndry run: nothing was written\n"
    assert not Municipality.objects.exists()

    run(*HOKUEI)
    out, _ = run("313726", "--prefecture", "鳥取県", "--name", "北栄村", "--update", "--dry-run")

    assert "would be updated: 313726 鳥取県北栄村" in out
    assert Municipality.objects.get().name == "北栄町"


@pytest.mark.django_db
def test_another_code_of_the_same_name_is_warned_about():
    run(*HOKUEI)
    # 313751 has a valid check digit: a slip of the finger the check digit cannot see.
    _, err = run("313751", "--prefecture", "鳥取県", "--name", "北栄町")

    assert "warning: 313726 is also named 鳥取県北栄町; check that 313751 is the right code" in err


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["313725", "--prefecture", "鳥取県", "--name", "北栄町"], "313725: the check digit should be 6"),
        (["31372", "--prefecture", "鳥取県", "--name", "北栄町"],
         "31372: 5 digits, without the check digit: the full code is 313726"),
        (["313726", "--prefecture", "島根県", "--name", "北栄町"], "313726 is a municipality of 鳥取県 (31), not of 島根県"),
        (["313726", "--prefecture", "鳥取", "--name", "北栄町"], "'鳥取' is not the name of a prefecture; 313726 is in 鳥取県"),
        (["313726", "--prefecture", "鳥取県", "--name", " "], "--name: is empty"),
        (["313726", "--prefecture", "鳥取県", "--name", "北栄\x07町"],
         "--name: contains a control or bidirectional-formatting character (U+0007)"),
        (["313726", "--prefecture", "鳥取県", "--name", "北栄\u202e町"],
         "--name: contains a control or bidirectional-formatting character (U+202E)"),
        (["313726", "--prefecture", "鳥取県", "--name", "鳥取県北栄町"], "--name: give the name without the prefecture ('北栄町')"),
        (["313726", "--prefecture", "鳥取県", "--name", "東伯郡北栄町"], "--name: give the name without the 郡 ('北栄町')"),
        (["313726", "--prefecture", "鳥取県", "--name", "北栄"], "--name: '北栄' does not end in 市, 区, 町 or 村"),
        (["313726", "--prefecture", "鳥取県", "--name", "町" * 101], "--name: is 101 characters long (at most 100)"),
        (["313726", "--prefecture", "鳥取県", "--name", "北栄町", "--name-kana", "hokuei"],
         "--name-kana: 'hokuei' is not written in katakana"),
        (["313726", "--prefecture", "鳥取県", "--name", "北栄町", "--name-kana", ""],
         "--name-kana: is empty (leave the option out to keep the reading as it is)"),
    ],
)
def test_refused(args, message):
    with pytest.raises(CommandError) as refused:
        run(*args)

    assert str(refused.value) == message
    assert not Municipality.objects.exists()


@pytest.mark.django_db
def test_every_problem_at_once():
    with pytest.raises(CommandError) as refused:
        run("313725", "--prefecture", "鳥取県", "--name", "", "--name-kana", "x")

    assert str(refused.value).splitlines() == [
        "313725: the check digit should be 6",
        "--name: is empty",
        "--name-kana: 'x' is not written in katakana",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "prefecture", "name"),
    [("011002", "北海道", "札幌市"), ("131016", "東京都", "千代田区"), ("472115", "沖縄県", "沖縄市"), ("312011", "鳥取県", "鳥取市")],
)
def test_real_municipalities(code, prefecture, name):
    run(code, "--prefecture", prefecture, "--name", name)

    assert Municipality.objects.filter(code=code, prefecture=prefecture, name=name).exists()
