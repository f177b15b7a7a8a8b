from typing import Any

from django.http import HttpRequest

from scrm.core.board import STEPS


def navigation(request: HttpRequest) -> dict[str, Any]:
    return {"workflow_steps": STEPS}
