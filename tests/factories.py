import factory

from cskpi.models import Department


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"dept-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.upper())
    timezone = "Asia/Ho_Chi_Minh"
