from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scrm.org import selectors
from scrm.org.api.serializers import MeOutput, StoreOutput


class StoreListApi(generics.ListAPIView):
    """Stores the signed-in staff member may see."""

    serializer_class = StoreOutput
    filterset_fields = ["region", "is_active", "city"]

    def get_queryset(self) -> Any:
        return selectors.store_list(
            user=self.request.user, search=self.request.query_params.get("q", "")[:100]
        )


class MeApi(APIView):
    """The signed-in staff member, their role and stores."""

    @extend_schema(responses=MeOutput)
    def get(self, request: Request) -> Response:
        return Response(MeOutput(request.user).data)  # type: ignore[arg-type]
