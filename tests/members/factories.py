from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from members.models import (
    Channel,
    Gender,
    Identity,
    IdentityKind,
    LifecycleStage,
    Member,
    Order,
    SandboxCodeKind,
    SandboxWechatCode,
    Tag,
    TagChoice,
    TagGroup,
)
from scrm.core.pii import phone_digest, seal_phone
from tests.org.factories import StoreFactory


class MemberFactory(DjangoModelFactory[Member]):
    class Meta:
        model = Member

    class Params:
        # The number as E.164; stored as digest, last four digits and sealed copy.
        phone = factory.Sequence(lambda n: f"+86138{n:08d}")

    name = factory.Faker("name", locale="zh_CN")
    gender = Gender.FEMALE
    phone_digest = factory.LazyAttribute(lambda o: phone_digest(o.phone) if o.phone else "")
    phone_last4 = factory.LazyAttribute(lambda o: o.phone[-4:])
    phone_sealed = factory.LazyAttribute(lambda o: seal_phone(o.phone) if o.phone else None)
    city = factory.Faker("city_name", locale="zh_CN")
    home_store = factory.SubFactory(StoreFactory)
    lifecycle_stage = LifecycleStage.MEMBER


class IdentityFactory(DjangoModelFactory[Identity]):
    class Meta:
        model = Identity

    member = factory.SubFactory(MemberFactory)
    kind = IdentityKind.TMALL
    value = factory.Sequence(lambda n: f"tb{n:08d}")


def phone_identity(member: Member, phone: str | None = None, **fields: object) -> Identity:
    """A phone identity as the identity service stores it: the number's digest, with its
    last four digits as hint (the member's own phone when none is given)."""
    number = phone or member.reveal_phone()
    return IdentityFactory.create(
        member=member,
        kind=IdentityKind.PHONE,
        value=phone_digest(number),
        hint=number[-4:],
        **fields,
    )


class OrderFactory(DjangoModelFactory[Order]):
    class Meta:
        model = Order

    channel = Channel.POS
    external_id = factory.Sequence(lambda n: f"POS{n:08d}")
    member = factory.SubFactory(MemberFactory)
    paid_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=3))
    amount = Decimal("199.00")


class SandboxLoginCodeFactory(DjangoModelFactory[SandboxWechatCode]):
    class Meta:
        model = SandboxWechatCode

    code = factory.Sequence(lambda n: f"login-code-{n}")
    kind = SandboxCodeKind.LOGIN
    openid = factory.Sequence(lambda n: f"oOpen{n:06d}")
    unionid = factory.Sequence(lambda n: f"oUnion{n:06d}")


class SandboxPhoneCodeFactory(DjangoModelFactory[SandboxWechatCode]):
    class Meta:
        model = SandboxWechatCode

    code = factory.Sequence(lambda n: f"phone-code-{n}")
    kind = SandboxCodeKind.PHONE
    phone = factory.Sequence(lambda n: f"139{n:08d}")


class TagGroupFactory(DjangoModelFactory[TagGroup]):
    class Meta:
        model = TagGroup

    name = factory.Sequence(lambda n: f"标签组{n}")
    choice = TagChoice.MULTIPLE


class TagFactory(DjangoModelFactory[Tag]):
    class Meta:
        model = Tag

    group = factory.SubFactory(TagGroupFactory)
    name = factory.Sequence(lambda n: f"标签{n}")


def by_phone(e164: str) -> dict[str, str]:
    """Lookup kwargs for the member holding `e164` (members keep only its digest)."""
    return {"phone_digest": phone_digest(e164)}
