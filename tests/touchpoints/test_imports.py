"""Imports through the real job path: every source, every encoding, every count and error."""

import gc
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test import Client

from members.models import Identity, LifecycleStage, Member, MergeSuggestion, Order
from scrm.audit.models import AuditAction, AuditEvent
from scrm.core.pii import phone_digest
from scrm.core.tabular import ImportFileError
from tests.conftest import Org
from tests.members.factories import IdentityFactory, MemberFactory, by_phone, phone_identity
from tests.touchpoints.files import (
    JD_MEMBERS,
    POS_MEMBERS,
    POS_ORDERS,
    TMALL_MEMBERS,
    csv_bytes,
    upload,
    xlsx_bytes,
)
from touchpoints.imports.jobs import import_job_create, import_job_run
from touchpoints.models import ImportJob, ImportRowError, ImportStatus


def run(name: str, content: bytes, kind: str, source: str) -> ImportJob:
    job = import_job_create(
        upload=upload(name, content), kind=kind, source=source, actor=None, enqueue=False
    )
    result = import_job_run(job.pk, worker="test")
    assert result is not None
    return result


def counts(job: ImportJob) -> dict[str, int]:
    return {
        k: getattr(job, k)
        for k in ("created", "updated", "merged", "unchanged", "rejected", "to_review")
    }


def errors(job: ImportJob) -> list[tuple[int, str, str]]:
    return list(ImportRowError.objects.filter(job=job).values_list("row_number", "column", "value"))


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("utf-8", "tmall.csv"),
        ("utf-8-sig", "tmall-bom.csv"),
        ("gbk", "tmall-gbk.csv"),
        ("gb18030", "tmall-gb18030.csv"),
        (None, "tmall.xlsx"),
    ],
)
def test_tmall_members_in_every_encoding(db: None, encoding: str | None, name: str) -> None:
    content = xlsx_bytes(TMALL_MEMBERS) if encoding is None else csv_bytes(TMALL_MEMBERS, encoding)
    job = run(name, content, "members", "tmall")
    assert job.status == ImportStatus.DONE
    assert job.encoding == ("" if encoding is None else {"gbk": "gb18030"}.get(encoding, encoding))
    # 林小雨 and 陈杰 and the nickname-only buyer are new; row 4 is 林小雨 again (same phone,
    # a second Tmall id: merged); rows 5 and 6 are rejected.
    assert counts(job) == {
        "created": 3,
        "updated": 0,
        "merged": 1,
        "unchanged": 0,
        "rejected": 2,
        "to_review": 0,
    }
    assert errors(job) == [(5, "手机号", "1381234"), (6, "生日", "1990-02-30")]
    lin = Member.objects.get(**by_phone("+8613812340001"))
    assert (lin.name, lin.gender, str(lin.birthday), lin.city) == (
        "林小雨",
        "f",
        "1992-03-08",
        "杭州",
    )
    assert sorted(lin.identities.values_list("kind", "value")) == [
        ("phone", phone_digest("+8613812340001")),
        ("tmall", "tb_dup"),
        ("tmall", "tb_小雨点"),
    ]
    assert lin.lifecycle_stage == LifecycleStage.MEMBER
    assert lin.source_channel == "tmall"
    nick_only = Identity.objects.get(value="tb_only_nick").member
    assert nick_only.lifecycle_stage == LifecycleStage.PROSPECT and not nick_only.has_phone
    assert job.rows_done == 7 and job.rows_total == 6


def test_importing_the_same_file_twice_creates_nothing_new(db: None) -> None:
    first = run("jd.csv", csv_bytes(JD_MEMBERS), "members", "jd")
    assert counts(first) == {
        "created": 2,
        "updated": 0,
        "merged": 0,
        "unchanged": 0,
        "rejected": 1,
        "to_review": 0,
    }
    state = (Member.objects.count(), Identity.objects.count())
    second = run("jd.csv", csv_bytes(JD_MEMBERS), "members", "jd")
    assert counts(second) == {
        "created": 0,
        "updated": 0,
        "merged": 0,
        "unchanged": 2,
        "rejected": 1,
        "to_review": 0,
    }
    assert (Member.objects.count(), Identity.objects.count()) == state


def test_existing_members_are_found_updated_and_merged(db: None) -> None:
    known = MemberFactory(name="", phone="+8613512340001", city="", birthday=None)
    phone_identity(known, "+8613512340001")
    job = run("jd.csv", csv_bytes(JD_MEMBERS), "members", "jd")
    # Row 2 is the known member: the JD id links (merged) and blanks fill in.
    assert counts(job) == {
        "created": 1,
        "updated": 0,
        "merged": 1,
        "unchanged": 0,
        "rejected": 1,
        "to_review": 0,
    }
    known.refresh_from_db()
    assert (known.name, known.city) == ("孙悦", "北京")
    assert known.identities.filter(kind="jd", value="jd_user_01").exists()


def test_imported_phones_are_kept_sealed_for_new_and_known_members(db: None) -> None:
    """The phone a member file gives a new member, or a known member who had none, is
    stored as digest, last four and a sealed copy that opens to the number."""
    known = MemberFactory(name="", phone="", city="")
    IdentityFactory(member=known, kind="jd", value="jd_user_01")
    job = run("jd.csv", csv_bytes(JD_MEMBERS), "members", "jd")
    assert (job.created, job.merged, job.rejected) == (1, 1, 1)

    known.refresh_from_db()
    assert (known.phone_digest, known.phone_last4) == (phone_digest("+8613512340001"), "0001")
    assert known.reveal_phone() == "+8613512340001"
    assert known.identities.filter(kind="phone", value=phone_digest("+8613512340001")).exists()
    new = Member.objects.get(**by_phone("+8613512340002"))
    assert (new.name, new.phone_last4, new.reveal_phone()) == ("周强", "0002", "+8613512340002")


def test_text_that_looks_like_copy_syntax_is_stored_as_written(db: None) -> None:
    """Rows reach the database as COPY text the import formats itself: tabs, backslashes,
    line breaks and a literal \\N in a cell are data, not syntax."""
    name, city, card = "王\t小\\美", "上\n海\\N", "C\\00\t1"
    members = [
        ["手机号", "姓名", "性别", "生日", "城市", "会员卡号", "注册时间"],
        ["13912340001", name, "女", "1990-01-02", city, card, "2024-03-04 10:00:00"],
        ["13912340002", "\\N", "", "", "", "", ""],
    ]
    job = run("generic.csv", csv_bytes(members), "members", "generic")
    assert (job.created, job.rejected) == (2, 0)
    first = Member.objects.get(**by_phone("+8613912340001"))
    assert (first.name, first.city, str(first.birthday)) == (name, city, "1990-01-02")
    assert first.identities.filter(value=card).exists()
    assert Member.objects.get(**by_phone("+8613912340002")).name == "\\N"

    product = "短袖\tT恤\\白"
    orders = [
        [
            "渠道",
            "订单号",
            "手机号",
            "支付时间",
            "订单金额",
            "退款金额",
            "商品编码",
            "商品名称",
            "品类",
            "数量",
            "单价",
        ],
        [
            "pos",
            "B\\1\t2",
            "13912340001",
            "2025-02-03 12:00:00",
            "1,299.00",
            "",
            "SK\\1",
            product,
            "上\n装",
            "2",
            "649.50",
        ],
    ]
    job = run("orders.csv", csv_bytes(orders), "orders", "generic")
    assert (job.created, job.rejected) == (1, 0)
    order = Order.objects.get(external_id="B\\1\t2")
    assert (order.member_id, order.amount) == (first.pk, Decimal("1299.00"))
    line = order.lines.get()
    assert (line.sku, line.product_name, line.category) == ("SK\\1", product, "上\n装")
    assert (line.quantity, line.unit_price, line.amount) == (
        2,
        Decimal("649.50"),
        Decimal("1299.00"),
    )


def test_a_later_row_fills_in_a_member_an_earlier_row_of_the_file_created(db: None) -> None:
    rows = [
        ["手机号", "姓名", "性别", "生日", "城市", "会员卡号"],
        ["13912340011", "", "", "", "", ""],
        ["139 1234 0011", "周\t敏", "女", "1991-02-03", "杭州", "C-11"],
        ["13912340012", "吴昊", "男", "", "", ""],
        ["13912340012", "另一个名字", "", "1988-08-08", "", ""],
    ]
    job = run("twice.csv", csv_bytes(rows), "members", "generic")
    assert counts(job) == {
        "created": 2,
        "updated": 0,
        "merged": 1,  # the second row brought the card number
        "unchanged": 1,
        "rejected": 0,
        "to_review": 0,
    }
    first = Member.objects.get(**by_phone("+8613912340011"))
    assert (first.name, first.gender, str(first.birthday), first.city) == (
        "周\t敏",
        "f",
        "1991-02-03",
        "杭州",
    )
    assert first.identities.filter(value="C-11").exists()
    second = Member.objects.get(**by_phone("+8613912340012"))
    # Blanks are filled in; what the first row gave is kept.
    assert (second.name, second.gender, str(second.birthday)) == ("吴昊", "m", "1988-08-08")
    assert first.phone_last4 == "0011" and second.phone_last4 == "0012"


def test_known_members_are_filled_in_with_text_that_looks_like_copy_syntax(db: None) -> None:
    """Known members' blanks are filled in through a COPY of their new values too."""
    known = MemberFactory(name="", city="", birthday=None, gender="u", phone="+8613912340009")
    phone_identity(known)
    name, city = "李\t\\N", "杭\n州\\"
    rows = [
        ["手机号", "姓名", "性别", "生日", "城市"],
        ["13912340009", name, "男", "1988-07-06", city],
    ]
    job = run("fill.csv", csv_bytes(rows), "members", "generic")
    assert (job.created, job.updated, job.rejected) == (0, 1, 0)
    known.refresh_from_db()
    assert (known.name, known.city, known.gender, str(known.birthday)) == (
        name,
        city,
        "m",
        "1988-07-06",
    )
    assert known.reveal_phone() == "+8613912340009"  # the stored phone columns are kept


def test_an_identity_of_a_merged_member_brings_rows_to_the_member_it_was_merged_into(
    db: None,
) -> None:
    kept = MemberFactory(name="保留", city="", phone="+8613912340021")
    dropped = MemberFactory(name="", city="", phone="+8613912340022")
    phone_identity(dropped)  # still names the merged member, as merges leave it
    Member.all_objects.filter(pk=dropped.pk).update(merged_into=kept)
    pool = Member.all_objects.count()

    members = [["手机号", "城市"], ["13912340022", "苏州"]]
    job = run("merged.csv", csv_bytes(members), "members", "generic")
    assert (job.created, job.updated, job.rejected) == (0, 1, 0)
    assert Member.all_objects.count() == pool
    kept.refresh_from_db()
    assert kept.city == "苏州"  # filled in on the member kept, never on the merged one
    dropped.refresh_from_db()
    assert dropped.city == ""

    orders = [
        ["渠道", "订单号", "手机号", "支付时间", "订单金额"],
        ["pos", "M-1", "13912340022", "2025-02-03 12:00:00", "99.00"],
    ]
    job = run("merged-orders.csv", csv_bytes(orders), "orders", "generic")
    assert job.created == 1
    assert Order.objects.get(external_id="M-1").member_id == kept.pk
    assert Member.all_objects.count() == pool


def test_an_import_job_audits_its_changes_not_the_rows_it_creates(db: None) -> None:
    """The job is the record of the rows it creates; what it changes in the pool is in
    the audit trail like any other change."""
    known = MemberFactory(name="", phone="+8613512340001", city="", birthday=None)
    phone_identity(known, "+8613512340001")
    before = AuditEvent.objects.filter(action=AuditAction.INSERT).count()

    job = run("jd.csv", csv_bytes(JD_MEMBERS), "members", "jd")

    assert job.created == 1
    assert AuditEvent.objects.filter(action=AuditAction.INSERT).count() == before
    [filled] = AuditEvent.objects.filter(
        action=AuditAction.UPDATE, table="members_member", row_id=str(known.pk)
    )
    assert filled.new is not None and filled.new["name"] == "孙悦"
    # Outside an import job every insert is still recorded.
    MemberFactory(name="门店登记")
    assert AuditEvent.objects.filter(action=AuditAction.INSERT).count() == before + 1


def test_conflicting_identities_go_to_review_and_change_nothing(db: None) -> None:
    holder = MemberFactory(phone="+8613812340001", name="甲")
    phone_identity(holder, "+8613812340001")
    by_nick = MemberFactory(phone="", name="乙")
    IdentityFactory(member=by_nick, kind="tmall", value="tb_小雨点")
    rows = [TMALL_MEMBERS[0], TMALL_MEMBERS[1]]
    job = run("tmall.csv", csv_bytes(rows), "members", "tmall")
    # The phone (strong) decides; the Tmall id stays with 乙 and the pair is queued.
    assert counts(job)["unchanged"] + counts(job)["updated"] == 1
    assert Identity.objects.get(value="tb_小雨点").member == by_nick
    assert MergeSuggestion.objects.filter(status="open").count() == 1


def test_pos_members_with_store_and_guide_codes(org: Org) -> None:
    rows = [POS_MEMBERS[0], POS_MEMBERS[1], POS_MEMBERS[2], POS_MEMBERS[3]]
    job = run("pos.csv", csv_bytes(rows), "members", "pos")
    assert counts(job) == {
        "created": 1,
        "updated": 0,
        "merged": 0,
        "unchanged": 0,
        "rejected": 2,
        "to_review": 0,
    }
    assert errors(job) == [(3, "门店编码", "NOPE"), (4, "导购工号", "nobody")]
    zhang = Member.objects.get(**by_phone("+8613700001111"))
    assert (zhang.home_store, zhang.guide) == (org.a1, org.guide_a1)
    from members.models import GuideAssignment

    (history,) = GuideAssignment.objects.filter(member=zhang)
    assert (history.to_guide_id, history.store_id, history.reason) == (
        org.guide_a1.pk,
        org.a1.pk,
        "import",
    )


def test_pos_orders_with_lines_refunds_and_new_buyers(org: Org) -> None:
    run("pos.csv", csv_bytes(POS_MEMBERS[:2]), "members", "pos")
    job = run("orders.csv", csv_bytes(POS_ORDERS), "orders", "pos")
    assert counts(job) == {
        "created": 3,
        "updated": 0,
        "merged": 0,
        "unchanged": 0,
        "rejected": 1,
        "to_review": 0,
    }
    assert errors(job) == [(5, "销售时间", "2025-13-02")]
    t1 = Order.objects.get(external_id="T0001")
    assert (t1.member.name, t1.store, t1.guide, t1.amount) == (
        "张三",
        org.a1,
        org.guide_a1,
        Decimal("918.00"),
    )
    t2 = Order.objects.get(external_id="T0002")
    assert [line.sku for line in t2.lines.all()] == ["SK-A005", "SK-A003"]
    assert t2.amount == Decimal("1299.00")
    # An unknown buyer arrives as a prospect, not a member.
    assert t2.member.lifecycle_stage != LifecycleStage.MEMBER and t2.member.member_since is None
    t4 = Order.objects.get(external_id="T0004")
    assert (t4.refunded_amount, t4.status) == (Decimal("50.00"), "partially_refunded")
    zhang = Member.objects.get(**by_phone("+8613700001111"))
    assert (zhang.order_count, zhang.total_spent) == (1, Decimal("918.00"))
    # Imported orders earn growth value through the sweep, net of refunds so far.
    from members.models import LedgerEntry
    from members.services.earning import earn_rules_ensure_defaults
    from members.services.growth_sweep import growth_sweep_run

    earn_rules_ensure_defaults()
    assert growth_sweep_run().credited == 3
    t4_growth = LedgerEntry.objects.get(source="event:purchase", external_id=f"order:{t4.pk}")
    assert t4_growth.amount == 150  # 200 paid, 50 refunded
    again = run("orders.csv", csv_bytes(POS_ORDERS), "orders", "pos")
    assert counts(again) == {
        "created": 0,
        "updated": 0,
        "merged": 0,
        "unchanged": 3,
        "rejected": 1,
        "to_review": 0,
    }
    refunded = [list(r) for r in POS_ORDERS]
    refunded[5][5] = "200"
    later = run("orders.csv", csv_bytes(refunded), "orders", "pos")
    assert later.updated == 1
    t4.refresh_from_db()
    assert (t4.refunded_amount, t4.status) == (Decimal("200.00"), "refunded")
    assert Order.objects.count() == 3
    # The refund in the new export takes back the growth value the order earned.
    [reversal] = LedgerEntry.objects.filter(reverses=t4_growth)
    assert reversal.amount == -150
    # Only the job's new members and identities stay out of the audit trail: the points
    # it takes back are recorded like any other ledger entry.
    recorded = AuditEvent.objects.get(
        table="members_ledgerentry", action=AuditAction.INSERT, row_id=str(reversal.pk)
    )
    assert recorded.new is not None
    assert (recorded.member_id, recorded.new["amount"]) == (t4.member_id, -150)


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("empty.csv", b"", "file_empty"),
        ("header-only.csv", "手机号,姓名\r\n".encode(), "file_no_rows"),
        (
            "latin1.csv",
            "手机号,姓名\n13812340001,Zoë\n".encode() + b"\xff\xfe\xfa\n",
            "file_encoding",
        ),
        ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "file_binary"),
        ("fake.xlsx", "手机号,姓名\n13812340001,张三\n".encode(), "file_not_xlsx"),
        ("broken.xlsx", b"PK\x03\x04" + bytes(100), "file_not_xlsx"),
        ("no-phone.csv", "姓名,城市\n张三,上海\n".encode(), "file_missing_columns"),
    ],
)
def test_bad_files_are_refused_and_write_nothing(
    db: None, name: str, content: bytes, code: str, settings: Any
) -> None:
    media = Path(settings.MEDIA_ROOT)
    before = set(media.rglob("*")) if media.exists() else set()
    with pytest.raises(ImportFileError) as error:
        import_job_create(
            upload=upload(name, content),
            kind="members",
            source="generic",
            actor=None,
            enqueue=False,
        )
    assert error.value.code == code
    assert error.value.message
    assert ImportJob.objects.count() == 0 and Member.objects.count() == 0
    assert (set(media.rglob("*")) if media.exists() else set()) == before


def test_missing_order_columns_are_named(db: None) -> None:
    with pytest.raises(ImportFileError) as error:
        import_job_create(
            upload=upload("o.csv", "小票号,手机号\nT1,13812340001\n".encode()),
            kind="orders",
            source="pos",
            actor=None,
            enqueue=False,
        )
    assert error.value.code == "file_missing_columns"
    assert "销售时间" in error.value.message and "实收金额" in error.value.message


def test_file_over_the_size_limit_is_refused(db: None, settings: Any) -> None:
    settings.IMPORT_MAX_BYTES = 1000
    with pytest.raises(ImportFileError) as error:
        import_job_create(
            upload=upload("big.csv", csv_bytes(TMALL_MEMBERS * 20)),
            kind="members",
            source="tmall",
            actor=None,
            enqueue=False,
        )
    assert error.value.code == "file_too_large"
    assert ImportJob.objects.count() == 0


def test_chunks_commit_progress_and_counts_add_up(db: None, settings: Any) -> None:
    settings.IMPORT_CHUNK_ROWS = 7
    rows = [["手机号", "姓名"]] + [[f"1390000{n:04d}", f"会员{n}"] for n in range(50)]
    rows.insert(20, ["bad", "坏行"])
    job = run("many.csv", csv_bytes(rows), "members", "generic")
    assert counts(job) == {
        "created": 50,
        "updated": 0,
        "merged": 0,
        "unchanged": 0,
        "rejected": 1,
        "to_review": 0,
    }
    assert errors(job) == [(21, "手机号", "bad")]
    assert job.rows_done == 52


def test_written_tables_are_sampled_again_each_time_they_double(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from touchpoints.imports.jobs import StatisticsCadence

    monkeypatch.setattr(StatisticsCadence, "MINIMUM_BYTES", 8192)  # one page

    def members_table() -> tuple[int, float]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_relation_size('members_member'), reltuples FROM pg_class "
                "WHERE relname = 'members_member'"
            )
            return cursor.fetchone()

    with connection.cursor() as cursor:
        # Empty files to start from (rows earlier tests rolled back leave pages behind);
        # this test's transaction is rolled back too.
        cursor.execute("TRUNCATE members_member, members_identity CASCADE")
    cadence = StatisticsCadence("members")
    assert cadence.check() == []  # nothing written yet
    MemberFactory.create_batch(10)
    # The member table reached the minimum; the identity table did not grow.
    assert cadence.check() == ["members_member"]
    assert members_table()[1] == 10
    sampled_size = members_table()[0]
    while members_table()[0] < 2 * sampled_size:
        assert cadence.check() == []
        MemberFactory.create_batch(20)
    assert cadence.check() == ["members_member"]
    assert members_table()[1] == Member.objects.count()
    assert cadence.passes == 2


def test_a_job_gives_back_the_collectors_thresholds_it_relaxed(db: None) -> None:
    """A job runs in a long-lived worker: its collector setting must not outlive it, even
    when the job fails."""
    from touchpoints.imports import jobs

    before = gc.get_threshold()
    switch_interval = sys.getswitchinterval()
    seen: list[tuple[int, ...]] = []
    real_chunks = jobs._chunks

    def chunks_seen(*args: Any) -> Any:
        seen.append(gc.get_threshold())
        return real_chunks(*args)

    rows = [["手机号", "姓名"], ["13900001234", "会员"]]
    with mock.patch.object(jobs, "_chunks", chunks_seen):
        assert run("one.csv", csv_bytes(rows), "members", "generic").status == ImportStatus.DONE
    assert seen == [(jobs.IMPORT_GC_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before

    with mock.patch.object(jobs, "import_member_chunk", side_effect=RuntimeError("lost")):
        assert run("two.csv", csv_bytes(rows), "members", "generic").status == ImportStatus.FAILED
    assert gc.get_threshold() == before

    with mock.patch.object(jobs, "StatisticsCadence", side_effect=RuntimeError("no sizes")):
        assert run("three.csv", csv_bytes(rows), "members", "generic").status == (
            ImportStatus.FAILED
        )
    assert gc.get_threshold() == before
    assert sys.getswitchinterval() == switch_interval


def test_cancel_stops_a_queued_job(org: Org) -> None:
    from touchpoints.imports.jobs import import_job_cancel

    job = import_job_create(
        upload=upload("jd.csv", csv_bytes(JD_MEMBERS)),
        kind="members",
        source="jd",
        actor=None,
        enqueue=False,
    )
    import_job_cancel(job=job, actor=org.hq_admin)
    job.refresh_from_db()
    assert job.status == ImportStatus.CANCELLED
    assert import_job_run(job.pk) is None
    assert Member.objects.filter(identities__kind="jd").count() == 0


# --- The HQ pages -------------------------------------------------------------------------


def test_upload_page_runs_a_job_and_shows_errors(
    client: Client, org: Org, settings: Any, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from scrm.celery import app

    app.conf.task_always_eager = True
    try:
        client.force_login(org.hq_operator)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/hq/imports/",
                {
                    "kind": "members",
                    "source": "tmall",
                    "file": upload("tmall.csv", csv_bytes(TMALL_MEMBERS)),
                },
            )
    finally:
        app.conf.task_always_eager = False
    job = ImportJob.objects.get()
    assert response["Location"] == f"/hq/imports/{job.pk}/"
    page = client.get(f"/hq/imports/{job.pk}/").content.decode()
    assert "1381234" in page and "已完成" in page
    assert "3</b> 新建" in page and "2</b> 拒绝" in page
    report = client.get(f"/hq/imports/{job.pk}/errors.csv").content.decode("utf-8-sig")
    lines = report.strip().splitlines()
    assert len(lines) == 3 and lines[1].startswith("5,手机号,1381234,")
    from io import BytesIO

    from openpyxl import load_workbook

    sheet = load_workbook(BytesIO(client.get(f"/hq/imports/{job.pk}/errors.xlsx").content)).active
    assert [c.value for c in sheet[3]][:3] == [6, "生日", "1990-02-30"]


def test_upload_page_refuses_a_bad_file_with_a_message(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    response = client.post(
        "/hq/imports/", {"kind": "members", "source": "tmall", "file": upload("empty.csv", b"")}
    )
    assert response.status_code == 400
    assert ImportJob.objects.count() == 0


def test_guides_and_store_managers_cannot_import(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    assert client.get("/hq/imports/").status_code == 403
    client.force_login(org.guide_a1)
    assert client.get("/hq/imports/").status_code == 403


def test_template_download_and_mapping_edit(client: Client, org: Org) -> None:
    client.force_login(org.hq_admin)
    template = client.get("/hq/imports/template/members.csv").content.decode("utf-8-sig")
    assert template.startswith("手机号,姓名,性别,生日")
    from touchpoints.models import ImportMapping

    mapping = ImportMapping.objects.get(source="tmall", kind="members")
    data = {field: "，".join(aliases) for field, aliases in mapping.columns.items()}
    data["phone"] = "手机号, 会员手机"
    client.post(f"/hq/imports/mappings/{mapping.pk}/", data)
    mapping.refresh_from_db()
    assert mapping.columns["phone"] == ["手机号", "会员手机"]
    renamed = [row[:] for row in TMALL_MEMBERS[:2]]
    renamed[0][1] = "会员手机"
    job = run("renamed.csv", csv_bytes(renamed), "members", "tmall")
    assert job.created == 1 and Member.objects.filter(**by_phone("+8613812340001")).exists()


def test_admin_import_previews_then_confirms(client: Client, org: Org) -> None:
    org.hq_admin.is_superuser = True
    org.hq_admin.save(update_fields=["is_superuser"])
    client.force_login(org.hq_admin)
    content = csv_bytes(
        [
            ["手机号", "姓名", "会员卡号"],
            ["13811112222", "后台导入", "A1"],
            ["138 1111 2222", "", "A2"],
        ]
    )
    before = Member.objects.count()
    preview = client.post(
        "/admin/members/member/import/",
        {"format": "0", "import_file": upload("small.csv", content)},
    )
    assert preview.status_code == 200
    assert "后台导入" in preview.content.decode()
    assert Member.objects.count() == before  # a preview writes nothing
    result = preview.context["result"]
    assert (result.totals["new"], result.totals["update"], result.totals["invalid"]) == (1, 1, 0)
    form = preview.context["confirm_form"]
    data = {name: form[name].value() for name in form.fields}
    confirmed = client.post("/admin/members/member/process_import/", data)
    assert confirmed.status_code == 302
    member = Member.objects.get(**by_phone("+8613811112222"))
    assert sorted(member.identities.values_list("value", flat=True)) == sorted(
        [phone_digest("+8613811112222"), "A1", "A2"]
    )


def test_admin_import_shows_bad_rows_and_writes_nothing(client: Client, org: Org) -> None:
    org.hq_admin.is_superuser = True
    org.hq_admin.save(update_fields=["is_superuser"])
    client.force_login(org.hq_admin)
    content = csv_bytes([["手机号", "姓名"], ["13811113333", "好"], ["12345", "坏"]])
    before = (Member.objects.count(), Identity.objects.count())
    preview = client.post(
        "/admin/members/member/import/", {"format": "0", "import_file": upload("bad.csv", content)}
    )
    body = preview.content.decode()
    assert "12345" in body and "不是有效的手机号" in body
    assert preview.context["result"].totals["invalid"] == 1
    assert preview.context.get("confirm_form") is None
    assert (Member.objects.count(), Identity.objects.count()) == before


def test_import_commands_print_a_summary_and_refuse_bad_files(db: None, tmp_path: Path) -> None:
    import json
    from io import StringIO

    from django.core.management import CommandError, call_command

    good = tmp_path / "jd.csv"
    good.write_bytes(csv_bytes(JD_MEMBERS))
    out = StringIO()
    call_command("import_members", str(good), source="jd", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert (summary["status"], summary["created"], summary["rejected"]) == ("done", 2, 1)
    before = (ImportJob.objects.count(), Member.objects.count())
    bad = tmp_path / "empty.csv"
    bad.write_bytes(b"")
    out = StringIO()
    with pytest.raises(CommandError, match="文件为空"):
        call_command("import_orders", str(bad), source="pos", stdout=out)
    assert json.loads(out.getvalue().strip())["code"] == "file_empty"
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_members", str(tmp_path / "missing.csv"), source="pos")
    assert (ImportJob.objects.count(), Member.objects.count()) == before


def test_pos_orders_with_a_guide_code_assign_unassigned_buyers(org: Org) -> None:
    from members.models import AssignmentReason, GuideAssignment

    header = POS_ORDERS[0]
    pool = MemberFactory(name="公海客户", home_store=org.a1, guide=None, phone="+8613600001111")
    far = MemberFactory(name="北京客户", home_store=org.b1, guide=None, phone="+8613600002222")
    phone_identity(pool)
    phone_identity(far)

    def row(number: str, phone: str, when: str, guide: str) -> list[str]:
        values = dict.fromkeys(header, "")
        values.update(
            {
                "小票号": number,
                "手机号": phone,
                "销售时间": when,
                "实收金额": "100",
                "门店编码": "SH001",
                "导购工号": guide,
                "商品编码": "SK-A001",
                "商品名称": "氨基酸洁面乳",
                "品类": "洁面",
                "数量": "1",
                "单价": "100",
            }
        )
        return [values[name] for name in header]

    rows = [
        header,
        row("G1", "13600001111", "2025-03-02 10:00", "guide_a1_other"),
        row("G2", "13600001111", "2025-03-01 10:00", "guide_a1"),  # earlier: decides
        row("G3", "13600002222", "2025-03-01 10:00", "guide_a1"),  # another store's buyer
        row("G4", "13500009999", "2025-03-01 10:00", "guide_a1"),  # a new buyer
    ]
    job = run("orders.csv", csv_bytes(rows), "orders", "pos")
    assert counts(job)["created"] == 4
    pool.refresh_from_db()
    far.refresh_from_db()
    newcomer = Member.objects.get(orders__external_id="G4")
    assert pool.guide_id == org.guide_a1.pk
    assert far.guide_id is None
    assert (newcomer.guide_id, newcomer.home_store_id) == (org.guide_a1.pk, org.a1.pk)
    assert sorted(
        GuideAssignment.objects.values_list("member_id", "to_guide_id", "reason")
    ) == sorted(
        [
            (pool.pk, org.guide_a1.pk, AssignmentReason.PURCHASE),
            (newcomer.pk, org.guide_a1.pk, AssignmentReason.PURCHASE),
        ]
    )
    # Each order stays credited to the guide named on it.
    assert Order.objects.get(external_id="G1").guide_id == org.guide_a1_other.pk
    assert Order.objects.get(external_id="G3").guide_id == org.guide_a1.pk
