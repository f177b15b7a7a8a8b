import factory
from factory.django import DjangoModelFactory

from scrm.org.models import Region, Staff, Store
from scrm.org.scoping import Role

PASSWORD = "correct-horse-battery"


class RegionFactory(DjangoModelFactory[Region]):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"region{n}")
    name = factory.Faker("province", locale="zh_CN")


class StoreFactory(DjangoModelFactory[Store]):
    class Meta:
        model = Store

    region = factory.SubFactory(RegionFactory)
    code = factory.Sequence(lambda n: f"S{n:04d}")
    name = factory.LazyAttributeSequence(lambda o, n: f"{o.city}{n}号店")
    city = factory.Faker("city_name", locale="zh_CN")


class StaffFactory(DjangoModelFactory[Staff]):
    class Meta:
        model = Staff
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    display_name = factory.Faker("name", locale="zh_CN")
    role = Role.GUIDE
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def stores(self, create, extracted, **kwargs):
        if create and extracted:
            self.stores.add(*extracted)
