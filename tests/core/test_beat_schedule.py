"""Every periodic job in the production beat schedule names a task the worker knows."""

import importlib


def test_every_beat_entry_names_a_registered_task() -> None:
    production = importlib.import_module("scrm.settings")
    from scrm.celery import app

    app.loader.import_default_modules()
    schedule = production.CELERY_BEAT_SCHEDULE
    assert {"rfm-recount", "rfm-review", "auto-tags", "segment-sizes"} <= set(schedule)
    unknown = {
        name: entry["task"] for name, entry in schedule.items() if entry["task"] not in app.tasks
    }
    assert unknown == {}
