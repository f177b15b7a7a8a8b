"""One person, one member: identity resolution across channels, and conflicts to review."""

from datetime import date

import pytest

from members.models import (
    Identity,
    IdentityKind,
    LifecycleStage,
    Member,
    MergeSuggestion,
    SuggestionStatus,
)
from members.services.errors import MemberError
from members.services.identity import identity_key, member_resolve
from scrm.core.pii import phone_digest
from tests.members.factories import IdentityFactory, MemberFactory, phone_identity

pytestmark = pytest.mark.django_db

APP = "wx-mini-demo"


def _state() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
    members = list(
        Member.all_objects.order_by("pk").values_list(
            "pk", "name", "phone_digest", "lifecycle_stage", "merged_into"
        )
    )
    identities = list(
        Identity.objects.order_by("pk").values_list("pk", "member_id", "kind", "app", "value")
    )
    return members, identities, MergeSuggestion.objects.count()


def test_same_person_from_mini_program_pos_and_tmall_becomes_one_member() -> None:
    # 1. The mini-program: a WeChat login, then the phone bound.
    first = member_resolve(
        identities=[identity_key("openid", "oMini001", app=APP), identity_key("unionid", "oU001")],
        source="mini_program",
    )
    assert first.created is True
    member = first.member
    assert member is not None and member.lifecycle_stage == LifecycleStage.PRIVATE
    assert (
        member_resolve(
            identities=[identity_key("unionid", "oU001"), identity_key("phone", "138 0013 8000")],
            source="mini_program",
        ).member
        == member
    )
    # 2. A store POS sale: phone written another way, plus the POS card number.
    pos = member_resolve(
        identities=[
            identity_key("phone", "+86-138-0013-8000"),
            identity_key("pos_card", "8800123456"),
        ],
        source="pos",
        profile={"name": "林小雨", "birthday": date(1992, 3, 8)},
    )
    assert pos.member == member and pos.created is False
    # 3. A Tmall order: the buyer id and the same phone in full-width digits.
    tmall = member_resolve(
        identities=[
            identity_key("tmall", "tb_lin_xiaoyu"),
            identity_key("phone", "１３８００１３８０００"),
        ],
        source="tmall",
    )
    assert tmall.member == member
    assert Member.objects.count() == 1
    member.refresh_from_db()
    assert member.reveal_phone() == "+8613800138000"
    assert member.name == "林小雨"
    assert member.birthday == date(1992, 3, 8)
    assert member.source_channel == "mini_program"
    assert sorted(member.identities.values_list("kind", "value")) == [
        ("openid", "oMini001"),
        ("phone", phone_digest("+8613800138000")),
        ("pos_card", "8800123456"),
        ("tmall", "tb_lin_xiaoyu"),
        ("unionid", "oU001"),
    ]
    # Returning later by the Tmall id alone still finds the same person.
    assert (
        member_resolve(identities=[identity_key("tmall", "tb_lin_xiaoyu")], source="tmall").member
        == member
    )


def test_strong_conflict_goes_to_review_and_changes_nothing() -> None:
    by_phone = MemberFactory(phone="+8613900000001")
    phone_identity(by_phone, "+8613900000001")
    by_union = MemberFactory(phone="")
    IdentityFactory(member=by_union, kind=IdentityKind.UNIONID, value="oU-conflict")
    before = _state()
    result = member_resolve(
        identities=[
            identity_key("phone", "13900000001"),
            identity_key("unionid", "oU-conflict"),
            identity_key("jd", "jd_new_buyer"),
        ],
        source="jd",
        profile={"name": "新名字"},
    )
    assert result.member is None and result.conflict
    suggestion = MergeSuggestion.objects.get()
    assert (suggestion.member_a_id, suggestion.member_b_id) == tuple(
        sorted((by_phone.pk, by_union.pk))
    )
    assert suggestion.status == SuggestionStatus.OPEN
    members, identities, _count = _state()
    assert (members, identities) == before[:2]  # no member, identity or profile change
    # The same conflict again raises no second suggestion.
    member_resolve(
        identities=[identity_key("phone", "13900000001"), identity_key("unionid", "oU-conflict")],
        source="jd",
    )
    assert MergeSuggestion.objects.count() == 1


def test_strong_identity_decides_over_a_weak_one_and_flags_the_pair() -> None:
    owner = MemberFactory()
    phone_identity(owner, "+8613700000007")
    other = MemberFactory()
    IdentityFactory(member=other, kind=IdentityKind.TMALL, value="tb_shared")
    result = member_resolve(
        identities=[identity_key("phone", "13700000007"), identity_key("tmall", "tb_shared")],
        source="tmall",
    )
    assert result.member == owner
    assert Identity.objects.get(kind="tmall", value="tb_shared").member == other  # not moved
    assert [(s.member_a_id, s.member_b_id) for s in result.suggestions] == [
        tuple(sorted((owner.pk, other.pk)))
    ]


def test_two_weak_identities_on_different_members_are_a_conflict() -> None:
    a = IdentityFactory(kind=IdentityKind.TMALL, value="tb_a").member
    b = IdentityFactory(kind=IdentityKind.JD, value="jd_b").member
    result = member_resolve(
        identities=[identity_key("tmall", "tb_a"), identity_key("jd", "jd_b")], source="import"
    )
    assert result.conflict
    assert MergeSuggestion.objects.filter(member_a=min(a, b, key=lambda m: m.pk)).exists()


def test_openids_are_unique_per_app_only() -> None:
    one = member_resolve(
        identities=[identity_key("openid", "same-openid", app="app-one")], source="mini_program"
    ).member
    two = member_resolve(
        identities=[identity_key("openid", "same-openid", app="app-two")], source="official_account"
    ).member
    assert one != two


def test_resolution_without_create_finds_nobody() -> None:
    result = member_resolve(
        identities=[identity_key("tmall", "tb_nobody")], source="tmall", create=False
    )
    assert result.member is None and not result.suggestions
    assert Member.objects.count() == 0


@pytest.mark.parametrize(
    ("kind", "value", "app", "code"),
    [
        ("phone", "12345", "", "phone_invalid"),
        ("phone", "", "", "phone_empty"),
        ("tmall", "   ", "", "identity_empty"),
        ("openid", "oOpen", "", "identity_app_missing"),
        ("passport", "E1234", "", "unknown_identity_kind"),
        ("tmall", "x" * 129, "", "identity_too_long"),
    ],
)
def test_bad_identities_are_refused(kind: str, value: str, app: str, code: str) -> None:
    with pytest.raises(MemberError) as error:
        identity_key(kind, value, app=app)
    assert error.value.code == code
    assert Member.objects.count() == 0


def test_resolving_nothing_is_refused() -> None:
    with pytest.raises(MemberError) as error:
        member_resolve(identities=[], source="pos")
    assert error.value.code == "identity_missing"
    assert Member.objects.count() == 0
