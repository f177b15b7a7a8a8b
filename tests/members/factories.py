import factory
from factory.django import DjangoModelFactory

from members.models import Gender, LifecycleStage, Member
from tests.org.factories import StoreFactory


class MemberFactory(DjangoModelFactory):
    class Meta:
        model = Member

    name = factory.Faker("name", locale="zh_CN")
    gender = Gender.FEMALE
    phone = factory.Sequence(lambda n: f"+86138{n:08d}")
    city = factory.Faker("city_name", locale="zh_CN")
    home_store = factory.SubFactory(StoreFactory)
    lifecycle_stage = LifecycleStage.MEMBER
