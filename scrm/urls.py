"""URL map. Each app exposes `hq_urlpatterns`, `mobile_urlpatterns` and `api_urlpatterns`;
they are mounted here under one namespace per workspace (`hq:`, `mobile:`, `api:`)."""

from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from members import urls as members_urls
from scrm.core import urls as core_urls
from scrm.core.views.auth import LoginView, LogoutView
from scrm.core.views.health import healthz
from scrm.org import urls as org_urls

hq_patterns = [*core_urls.hq_urlpatterns, *org_urls.hq_urlpatterns]
mobile_patterns = [*members_urls.mobile_urlpatterns]
api_patterns = [*org_urls.api_urlpatterns]


@extend_schema(responses=OpenApiTypes.OBJECT, summary="Links to the API v1 endpoints")
@api_view(["GET"])
def api_root(request: Request) -> Response:
    """Entry point of API v1: links to its endpoints and to the OpenAPI schema."""
    links = {
        p.name: reverse(f"api:{p.name}", request=request)
        for p in api_patterns
        if p.name and "<" not in str(p.pattern)
    }
    links["schema"] = reverse("api-schema", request=request)
    links["docs"] = reverse("api-docs", request=request)
    return Response(links)


urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("hq/login/", LoginView.as_view(), name="hq_login"),
    path("m/login/", LoginView.as_view(mobile=True), name="mobile_login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("hq/", include((hq_patterns, "hq"))),
    path("m/", include((mobile_patterns, "mobile"))),
    path("admin/", admin.site.urls),
    path("api/v1/", include(([path("", api_root, name="root"), *api_patterns], "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("", LoginView.as_view(), name="root"),
]
