"""Demo organisation: 3 regions, 12 stores, 40 guides and the named demo logins."""

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.db import transaction

from scrm.core.demo import DEMO_PASSWORD, DemoContext, demo_step
from scrm.org.models import Region, Staff, Store
from scrm.org.scoping import Role

REGIONS = [("east", "华东大区"), ("south", "华南大区"), ("north", "华北大区")]
STORES = [
    ("SH001", "上海南京西路店", "上海", "east", "静安区南京西路1266号"),
    ("SH002", "上海徐家汇店", "上海", "east", "徐汇区虹桥路1号"),
    ("HZ001", "杭州湖滨店", "杭州", "east", "上城区湖滨路28号"),
    ("NJ001", "南京新街口店", "南京", "east", "秦淮区中山南路1号"),
    ("GZ001", "广州天河城店", "广州", "south", "天河区天河路208号"),
    ("SZ001", "深圳万象城店", "深圳", "south", "罗湖区宝安南路1881号"),
    ("XM001", "厦门中山路店", "厦门", "south", "思明区中山路168号"),
    ("FZ001", "福州东街口店", "福州", "south", "鼓楼区八一七北路88号"),
    ("BJ001", "北京三里屯店", "北京", "north", "朝阳区三里屯路19号"),
    ("BJ002", "北京西单店", "北京", "north", "西城区西单北大街120号"),
    ("TJ001", "天津滨江道店", "天津", "north", "和平区滨江道208号"),
    ("QD001", "青岛万象城店", "青岛", "north", "市南区山东路6号"),
]
GUIDE_NAMES = [
    "李娜",
    "王芳",
    "张敏",
    "刘静",
    "陈丽",
    "杨洋",
    "赵婷",
    "黄磊",
    "周杰",
    "吴倩",
    "徐静",
    "孙悦",
    "胡蓉",
    "朱琳",
    "高峰",
    "林峰",
    "何佳",
    "郭晶",
    "马丽",
    "罗敏",
    "梁晨",
    "宋佳",
    "郑爽",
    "谢娜",
    "韩雪",
    "唐嫣",
    "冯巩",
    "于洋",
    "董洁",
    "萧蔷",
    "程雪",
    "曹颖",
    "袁泉",
    "邓超",
    "许晴",
    "傅雷",
    "沈腾",
    "曾黎",
    "彭悦",
    "吕燕",
]
GUIDE_COUNT = 40


def guide_username(index: int) -> str:
    return "guide" if index == 0 else f"guide{index + 1:02d}"


@demo_step(order=10)
@transaction.atomic
def seed_organisation(ctx: DemoContext) -> str:
    password = make_password(DEMO_PASSWORD)  # hashed once: hashing 45 times would take seconds
    regions = {}
    for code, name in REGIONS:
        regions[code], _ = Region.objects.update_or_create(code=code, defaults={"name": name})
    stores = []
    for code, name, city, region_code, address in STORES:
        store, _ = Store.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "city": city,
                "region": regions[region_code],
                "address": address,
            },
        )
        stores.append(store)

    def account(username: str, display: str, role: str, **extra: object) -> Staff:
        staff, created = Staff.objects.get_or_create(
            username=username,
            defaults={
                "display_name": display,
                "role": role,
                "password": password,
                **extra,
            },
        )
        return staff

    account("admin", "总部管理员", Role.HQ_ADMIN, is_staff=True, is_superuser=True)
    account("operator", "总部运营", Role.HQ_OPERATOR)
    account("region", "华东大区经理", Role.REGION_MANAGER, region=regions["east"])
    manager = account("manager", "南京西路店长", Role.STORE_MANAGER)
    manager.stores.add(stores[0])
    guides_by_store: dict[int, list[int]] = {store.pk: [] for store in stores}
    for index in range(GUIDE_COUNT):
        store = stores[index % len(stores)]
        guide = account(guide_username(index), GUIDE_NAMES[index], Role.GUIDE)
        guide.stores.add(store)
        guides_by_store[store.pk].append(guide.pk)
    ctx.data["stores"] = stores
    ctx.data["guides_by_store"] = guides_by_store
    return f"{len(regions)} regions, {len(stores)} stores, {GUIDE_COUNT} guides, 4 managers/HQ"
