"""Real-looking channel exports for the import tests, written in any encoding or as XLSX."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    return text.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


def write(tmp: Path, name: str, content: bytes) -> Path:
    path = tmp / name
    path.write_bytes(content)
    return path


TMALL_MEMBERS = [
    ["买家昵称", "手机号", "姓名", "性别", "生日", "所在城市", "入会时间"],
    ["tb_小雨点", "13812340001", "林小雨", "女", "1992-03-08", "杭州", "2024-05-01 10:00:00"],
    ["tb_阿杰", "+86 139 1234 0002", "陈杰", "男", "1988/11/23", "上海", "2024/06/02"],
    ["tb_dup", "13812340001", "", "", "", "", ""],  # same phone as row 2: same person
    ["tb_bad_phone", "1381234", "王错", "女", "", "", ""],
    ["tb_bad_date", "13612340004", "赵日", "女", "1990-02-30", "", ""],
    ["tb_only_nick", "", "", "", "", "", ""],
]

JD_MEMBERS = [
    ["京东账号", "手机号码", "会员姓名", "性别", "生日", "城市", "开卡时间"],
    ["jd_user_01", "13512340001", "孙悦", "女", "1995年7月1日", "北京", "2023-12-12"],
    ["jd_user_02", "１３５１２３４０００２", "周强", "男", "", "天津", ""],
    ["jd_user_03", "abc", "", "", "", "", ""],
]

POS_MEMBERS = [
    ["会员卡号", "手机号", "姓名", "性别", "生日", "门店编码", "导购工号", "开卡日期"],
    ["8800001", "13700001111", "张三", "男", "1990-05-01", "SH001", "guide_a1", "2024-01-02"],
    ["8800002", "13700002222", "李四", "女", "1985-03-08", "NOPE", "", ""],
    ["8800003", "13700003333", "王五", "男", "", "SH001", "nobody", ""],
]

POS_ORDERS = [
    [
        "小票号",
        "会员卡号",
        "手机号",
        "销售时间",
        "实收金额",
        "退货金额",
        "门店编码",
        "导购工号",
        "商品编码",
        "商品名称",
        "品类",
        "数量",
        "单价",
    ],
    [
        "T0001",
        "8800001",
        "",
        "2025-03-01 10:00",
        "918.00",
        "",
        "SH001",
        "guide_a1",
        "SK-A003",
        "修护精华液",
        "精华",
        "2",
        "459",
    ],
    [
        "T0002",
        "",
        "13500005555",
        "2025-03-02 11:00",
        "1,299.00",
        "",
        "SH001",
        "",
        "SK-A005",
        "焕颜面霜",
        "面霜",
        "1",
        "528",
    ],
    [
        "T0002",
        "",
        "13500005555",
        "2025-03-02 11:00",
        "1,299.00",
        "",
        "SH001",
        "",
        "SK-A003",
        "修护精华液",
        "精华",
        "1",
        "459",
    ],
    [
        "T0003",
        "8800009",
        "",
        "2025-13-02",
        "100",
        "",
        "SH001",
        "",
        "SK-A001",
        "洁面",
        "洁面",
        "1",
        "100",
    ],
    [
        "T0004",
        "8800002",
        "",
        "2025-03-04 09:00",
        "¥200",
        "50",
        "SH001",
        "",
        "SK-A001",
        "洁面",
        "洁面",
        "2",
        "100",
    ],
]
