"""Every source's own export format, members and orders, through the job path."""

from decimal import Decimal

import pytest

from members.models import Identity, LifecycleStage, Member, Order
from tests.conftest import Org
from tests.members.factories import by_phone
from tests.touchpoints.files import csv_bytes, xlsx_bytes
from tests.touchpoints.test_imports import counts, errors, run

pytestmark = pytest.mark.django_db

MEITUAN_MEMBERS = [
    ["用户ID", "手机号", "姓名", "城市", "注册时间"],
    ["mt_001", "15012340001", "外卖达人", "广州", "2025/01/02 12:00"],
    ["mt_002", "", "", "深圳", ""],
    ["mt_003", "150123400", "", "", ""],
]
MINI_PROGRAM_MEMBERS = [
    ["openid", "unionid", "手机号", "昵称", "性别", "生日", "城市", "注册时间"],
    [
        "oMini_a",
        "oUnion_a",
        "18612340001",
        "小程序会员",
        "女",
        "1999-09-09",
        "杭州",
        "2025-02-03 08:00:00",
    ],
    ["oMini_b", "oUnion_b", "", "只关注", "", "", "", ""],
]
TMALL_ORDERS = [
    [
        "订单编号",
        "买家昵称",
        "收货人手机号",
        "订单付款时间",
        "买家实际支付金额",
        "退款金额",
        "商家编码",
        "宝贝标题",
        "类目",
        "购买数量",
        "价格",
    ],
    [
        "TB2025001",
        "tb_buyer_1",
        "13912340001",
        "2025-06-18 00:10:00",
        "￥459.00",
        "0",
        "SK-A003",
        "修护精华液",
        "精华",
        "1",
        "459",
    ],
    [
        "TB2025002",
        "tb_buyer_2",
        "",
        "2025-06-18 00:20:00",
        "238.00",
        "238.00",
        "SK-A004",
        "防晒乳",
        "防晒",
        "1",
        "238",
    ],
    ["TB2025003", "", "", "2025-06-18 00:30:00", "99.00", "", "SK-X", "赠品", "", "1", "99"],
]
JD_ORDERS = [
    [
        "订单号",
        "京东账号",
        "联系电话",
        "付款时间",
        "应付金额",
        "商品编号",
        "商品名称",
        "商品数量",
        "京东价",
    ],
    [
        "JD900001",
        "jd_pin_1",
        "13712340009",
        "2025-11-11 00:00:01",
        "1,299.00",
        "100012",
        "焕颜面霜",
        "1",
        "1,299.00",
    ],
    ["JD900002", "jd_pin_2", "", "2025-11-11 00:00:02", "abc", "100013", "洁面", "1", "99"],
]
MEITUAN_ORDERS = [
    ["订单号", "用户ID", "手机号", "支付时间", "用户实付", "门店编码", "商品名称", "数量", "单价"],
    ["MT1", "mt_001", "", "2025-08-08 12:00", "56.5", "SH001", "拿铁", "2", "28.25"],
    ["MT2", "mt_009", "", "2025-08-08 12:05", "30", "ZZ", "美式", "1", "30"],
]
MINI_PROGRAM_ORDERS = [
    [
        "订单号",
        "openid",
        "unionid",
        "手机号",
        "支付时间",
        "支付金额",
        "门店编码",
        "导购工号",
        "商品编码",
        "商品名称",
        "数量",
        "单价",
    ],
    [
        "WX1",
        "oMini_a",
        "oUnion_a",
        "",
        "2025-09-01 09:00",
        "199",
        "SH001",
        "guide_a1",
        "SK-A002",
        "保湿水",
        "1",
        "199",
    ],
]
GENERIC_ORDERS = [
    ["渠道", "订单号", "手机号", "支付时间", "订单金额", "商品名称", "数量", "单价"],
    ["douyin", "DY1", "13612349999", "2025-10-10 20:00", "88", "直播福袋", "1", "88"],
    ["shopee", "SP1", "13612349999", "2025-10-10 20:00", "88", "", "", ""],
]


def test_meituan_members(db: None) -> None:
    job = run("mt.csv", csv_bytes(MEITUAN_MEMBERS, "gbk"), "members", "meituan")
    assert counts(job) == {
        "created": 2,
        "updated": 0,
        "merged": 0,
        "unchanged": 0,
        "rejected": 1,
        "to_review": 0,
    }
    assert errors(job) == [(4, "手机号", "150123400")]
    assert Identity.objects.get(kind="meituan", value="mt_002").member.city == "深圳"


def test_mini_program_members_are_private_or_members(db: None) -> None:
    job = run("mp.xlsx", xlsx_bytes(MINI_PROGRAM_MEMBERS), "members", "mini_program")
    assert job.created == 2 and job.rejected == 0
    joined = Member.objects.get(**by_phone("+8618612340001"))
    assert joined.lifecycle_stage == LifecycleStage.MEMBER
    assert joined.identities.filter(
        kind="openid", app="sandbox-mini-program", value="oMini_a"
    ).exists()
    follower = Identity.objects.get(value="oUnion_b").member
    assert follower.lifecycle_stage == LifecycleStage.PRIVATE


def test_tmall_orders_with_full_refund_and_nameless_buyer_row(db: None) -> None:
    job = run("tb-orders.csv", csv_bytes(TMALL_ORDERS, "utf-8-sig"), "orders", "tmall")
    assert counts(job) == {
        "created": 2,
        "updated": 0,
        "merged": 0,
        "unchanged": 0,
        "rejected": 1,
        "to_review": 0,
    }
    assert errors(job)[0][0] == 4
    refunded = Order.objects.get(external_id="TB2025002")
    assert (refunded.status, refunded.refunded_amount) == ("refunded", Decimal("238.00"))
    assert refunded.member.order_count == 0
    assert Order.objects.get(external_id="TB2025001").channel == "tmall"


def test_jd_orders(db: None) -> None:
    job = run("jd-orders.csv", csv_bytes(JD_ORDERS, "gb18030"), "orders", "jd")
    assert (job.created, job.rejected) == (1, 1)
    assert errors(job) == [(3, "应付金额", "abc")]
    order = Order.objects.get(external_id="JD900001")
    assert order.amount == Decimal("1299.00")
    assert order.member.identities.filter(kind="jd", value="jd_pin_1").exists()


def test_meituan_orders_credit_the_store_and_refuse_unknown_stores(org: Org) -> None:
    run("mt.csv", csv_bytes(MEITUAN_MEMBERS), "members", "meituan")
    job = run("mt-orders.csv", csv_bytes(MEITUAN_ORDERS), "orders", "meituan")
    assert (job.created, job.rejected) == (1, 1)
    assert errors(job) == [(3, "门店编码", "ZZ")]
    order = Order.objects.get(external_id="MT1")
    assert order.store == org.a1 and order.member.name == "外卖达人"
    assert order.lines.get().quantity == 2


def test_mini_program_orders_find_the_member_by_openid(org: Org) -> None:
    run("mp.xlsx", xlsx_bytes(MINI_PROGRAM_MEMBERS), "members", "mini_program")
    job = run("mp-orders.xlsx", xlsx_bytes(MINI_PROGRAM_ORDERS), "orders", "mini_program")
    assert job.created == 1
    order = Order.objects.get(external_id="WX1")
    assert order.member.reveal_phone() == "+8618612340001" and order.guide == org.guide_a1
    assert Member.objects.count() == 5 + 2  # the org's five and the two imported: no new buyer


def test_generic_orders_need_a_known_channel(db: None) -> None:
    job = run("generic.csv", csv_bytes(GENERIC_ORDERS), "orders", "generic")
    assert (job.created, job.rejected) == (1, 1)
    assert errors(job) == [(3, "渠道", "shopee")]
    assert Order.objects.get().channel == "douyin"
