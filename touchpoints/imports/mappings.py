"""Each source's own column headers for our fields, as exported by that channel.

These are the defaults; HQ edits them per source on the mapping page (stored in
`ImportMapping`). Matching ignores case, spaces and full-width/half-width differences.
"""

from __future__ import annotations

from members.models import IdentityKind
from scrm.core.tabular import header_key

# Our member fields → headers per source.
MEMBER_DEFAULTS: dict[str, dict[str, list[str]]] = {
    "tmall": {
        "buyer_id": ["买家昵称", "淘宝昵称", "会员昵称", "买家ID"],
        "phone": ["手机号", "手机号码", "联系电话"],
        "name": ["姓名", "会员姓名", "真实姓名"],
        "gender": ["性别"],
        "birthday": ["生日", "出生日期"],
        "city": ["所在城市", "城市"],
        "registered_at": ["入会时间", "注册时间"],
    },
    "jd": {
        "buyer_id": ["京东账号", "用户PIN", "用户pin", "会员账号"],
        "phone": ["手机号码", "手机号", "联系电话"],
        "name": ["会员姓名", "姓名"],
        "gender": ["性别"],
        "birthday": ["生日"],
        "city": ["城市", "所在城市"],
        "registered_at": ["开卡时间", "注册时间"],
    },
    "meituan": {
        "buyer_id": ["用户ID", "美团用户ID", "顾客ID"],
        "phone": ["手机号", "联系电话"],
        "name": ["姓名", "顾客姓名"],
        "city": ["城市"],
        "registered_at": ["注册时间", "首次下单时间"],
    },
    "pos": {
        "buyer_id": ["会员卡号", "卡号"],
        "phone": ["手机号", "手机号码"],
        "name": ["姓名", "会员姓名"],
        "gender": ["性别"],
        "birthday": ["生日"],
        "city": ["城市"],
        "store_code": ["门店编码", "开卡门店编码"],
        "guide": ["导购工号", "导购"],
        "registered_at": ["开卡日期", "开卡时间"],
    },
    "mini_program": {
        "buyer_id": ["openid", "OpenID"],
        "unionid": ["unionid", "UnionID"],
        "phone": ["手机号", "绑定手机"],
        "name": ["昵称", "姓名"],
        "gender": ["性别"],
        "birthday": ["生日"],
        "city": ["城市"],
        "registered_at": ["注册时间", "授权时间"],
    },
    "generic": {
        "phone": ["手机号"],
        "name": ["姓名"],
        "gender": ["性别"],
        "birthday": ["生日"],
        "city": ["城市"],
        "store_code": ["门店编码"],
        "guide": ["导购工号"],
        "registered_at": ["注册时间"],
        "unionid": ["unionid"],
        "tmall_id": ["天猫买家ID"],
        "jd_id": ["京东账号"],
        "meituan_id": ["美团用户ID"],
        "douyin_id": ["抖音用户ID"],
        "pos_card": ["会员卡号"],
    },
}

ORDER_DEFAULTS: dict[str, dict[str, list[str]]] = {
    "tmall": {
        "order_id": ["订单编号", "订单号"],
        "buyer_id": ["买家昵称", "买家ID"],
        "phone": ["收货人手机号", "联系手机", "手机号"],
        "paid_at": ["订单付款时间", "付款时间"],
        "amount": ["买家实际支付金额", "实付金额"],
        "refund_amount": ["退款金额"],
        "sku": ["商家编码", "商品编码"],
        "product_name": ["宝贝标题", "商品名称"],
        "category": ["类目", "商品类目"],
        "quantity": ["购买数量", "宝贝数量"],
        "unit_price": ["价格", "单价"],
    },
    "jd": {
        "order_id": ["订单号"],
        "buyer_id": ["京东账号", "用户PIN"],
        "phone": ["联系电话", "手机号"],
        "paid_at": ["付款时间", "下单时间"],
        "amount": ["应付金额", "订单金额"],
        "refund_amount": ["退款金额"],
        "sku": ["商品编号", "商品ID"],
        "product_name": ["商品名称"],
        "category": ["类目"],
        "quantity": ["商品数量", "数量"],
        "unit_price": ["京东价", "单价"],
    },
    "meituan": {
        "order_id": ["订单号", "订单编号"],
        "buyer_id": ["用户ID"],
        "phone": ["手机号"],
        "paid_at": ["支付时间", "下单时间"],
        "amount": ["用户实付", "实付金额"],
        "refund_amount": ["退款金额"],
        "store_code": ["门店编码"],
        "sku": ["商品编码"],
        "product_name": ["商品名称"],
        "quantity": ["数量"],
        "unit_price": ["单价"],
    },
    "pos": {
        "order_id": ["小票号", "单据号"],
        "buyer_id": ["会员卡号"],
        "phone": ["手机号"],
        "paid_at": ["销售时间", "交易时间"],
        "amount": ["实收金额", "应收金额"],
        "refund_amount": ["退货金额", "退款金额"],
        "store_code": ["门店编码"],
        "guide": ["导购工号"],
        "sku": ["商品编码"],
        "product_name": ["商品名称"],
        "category": ["品类"],
        "quantity": ["数量"],
        "unit_price": ["单价"],
    },
    "mini_program": {
        "order_id": ["订单号"],
        "buyer_id": ["openid"],
        "unionid": ["unionid"],
        "phone": ["手机号"],
        "paid_at": ["支付时间"],
        "amount": ["支付金额"],
        "refund_amount": ["退款金额"],
        "store_code": ["门店编码"],
        "guide": ["导购工号"],
        "sku": ["商品编码"],
        "product_name": ["商品名称"],
        "category": ["品类"],
        "quantity": ["数量"],
        "unit_price": ["单价"],
    },
    "generic": {
        "channel": ["渠道"],
        "order_id": ["订单号"],
        "phone": ["手机号"],
        "unionid": ["unionid"],
        "pos_card": ["会员卡号"],
        "tmall_id": ["天猫买家ID"],
        "paid_at": ["支付时间"],
        "amount": ["订单金额"],
        "refund_amount": ["退款金额"],
        "store_code": ["门店编码"],
        "guide": ["导购工号"],
        "sku": ["商品编码"],
        "product_name": ["商品名称"],
        "category": ["品类"],
        "quantity": ["数量"],
        "unit_price": ["单价"],
    },
}

# Which identity a source's `buyer_id` column is, and which channel its orders belong to.
BUYER_ID_KIND = {
    "tmall": IdentityKind.TMALL,
    "jd": IdentityKind.JD,
    "meituan": IdentityKind.MEITUAN,
    "pos": IdentityKind.POS_CARD,
    "mini_program": IdentityKind.OPENID,
}
SOURCE_CHANNEL = {
    "tmall": "tmall",
    "jd": "jd",
    "meituan": "meituan",
    "pos": "pos",
    "mini_program": "mini_program",
}
# Generic-template identity columns.
ID_COLUMNS = {
    "unionid": IdentityKind.UNIONID,
    "tmall_id": IdentityKind.TMALL,
    "jd_id": IdentityKind.JD,
    "meituan_id": IdentityKind.MEITUAN,
    "douyin_id": IdentityKind.DOUYIN,
    "pos_card": IdentityKind.POS_CARD,
}
IDENTITY_FIELDS = frozenset({"phone", "buyer_id", *ID_COLUMNS})
REQUIRED_ORDER_FIELDS = ("order_id", "paid_at", "amount")


def defaults(kind: str, source: str) -> dict[str, list[str]]:
    table = MEMBER_DEFAULTS if kind == "members" else ORDER_DEFAULTS
    return {field: list(headers) for field, headers in table[source].items()}


def match_columns(headers: list[str], mapping: dict[str, list[str]]) -> dict[str, int]:
    """Our field → column index, for the fields whose header appears in the file."""
    positions = {header_key(h): i for i, h in enumerate(headers) if header_key(h)}
    found: dict[str, int] = {}
    for field, aliases in mapping.items():
        for alias in aliases:
            index = positions.get(header_key(alias))
            if index is not None:
                found[field] = index
                break
    return found


def template_headers(kind: str) -> list[str]:
    """The generic template's header row (first alias of each field)."""
    return [aliases[0] for aliases in defaults(kind, "generic").values()]
