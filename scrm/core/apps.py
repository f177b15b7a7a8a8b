from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class CoreConfig(AppConfig):
    name = "scrm.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from scrm.core import checks  # noqa: F401 - registers the deployment checks

        # Apps register benches in `<app>/bench.py`, demo data in `<app>/demo.py` and
        # board figures in `<app>/board.py`, member profile sections in `<app>/profile.py`.
        autodiscover_modules("bench")
        autodiscover_modules("demo")
        autodiscover_modules("board")
        autodiscover_modules("profile")
