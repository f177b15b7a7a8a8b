from collections.abc import Sequence
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse


def make_api_root(patterns: Sequence[Any]) -> Any:
    """The `/api/v1/` entry point: links to every parameterless endpoint and to the schema."""

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Links to the API v1 endpoints")
    @api_view(["GET"])
    def api_root(request: Request) -> Response:
        links = {
            p.name: reverse(f"api:{p.name}", request=request)
            for p in patterns
            if p.name and "<" not in str(p.pattern)
        }
        links["schema"] = reverse("api-schema", request=request)
        links["docs"] = reverse("api-docs", request=request)
        return Response(links)

    return api_root
