"""Step 9, monitor: the dashboards under /hq/monitor/."""

from django.urls import URLPattern, path

from analytics.views import dashboards

hq_urlpatterns: list[URLPattern] = [
    path("monitor/", dashboards.index, name="monitor"),
    path("monitor/pool/", dashboards.pool, name="monitor-pool"),
    path("monitor/lifecycle/", dashboards.lifecycle, name="monitor-lifecycle"),
    path("monitor/tiers/", dashboards.tiers, name="monitor-tiers"),
    path("monitor/points/", dashboards.points, name="monitor-points"),
    path("monitor/rfm/", dashboards.rfm, name="monitor-rfm"),
    path("monitor/sales/", dashboards.sales, name="monitor-sales"),
    path("monitor/cohorts/", dashboards.cohorts, name="monitor-cohorts"),
]
