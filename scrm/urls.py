"""URL map. Each app exposes `hq_urlpatterns`, `mobile_urlpatterns` and `api_urlpatterns`;
they are mounted here under one namespace per workspace (`hq:`, `mobile:`, `api:`)."""

from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from analytics import urls as analytics_urls
from campaigns import urls as campaigns_urls
from members import urls as members_urls
from scrm.audit import urls as audit_urls
from scrm.core import urls as core_urls
from scrm.core.views.api import make_api_root
from scrm.core.views.auth import LoginView, LogoutView
from scrm.core.views.health import healthz
from scrm.org import urls as org_urls
from touchpoints import urls as touchpoints_urls

hq_patterns = [
    *core_urls.hq_urlpatterns,
    *org_urls.hq_urlpatterns,
    *audit_urls.hq_urlpatterns,
    *members_urls.hq_urlpatterns,
    *touchpoints_urls.hq_urlpatterns,
    *campaigns_urls.hq_urlpatterns,
    *analytics_urls.hq_urlpatterns,
]
mobile_patterns = [*members_urls.mobile_urlpatterns, *campaigns_urls.mobile_urlpatterns]
api_patterns = [
    *org_urls.api_urlpatterns,
    *members_urls.api_urlpatterns,
    *touchpoints_urls.api_urlpatterns,
    *campaigns_urls.api_urlpatterns,
]


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
    path(
        "api/v1/",
        include(([path("", make_api_root(api_patterns), name="root"), *api_patterns], "api")),
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    *touchpoints_urls.public_urlpatterns,
    *campaigns_urls.public_urlpatterns,
    path("", LoginView.as_view(), name="root"),
]

handler404 = "scrm.core.views.errors.not_found"
handler500 = "scrm.core.views.errors.server_error"
