from django.urls import path

from touchpoints.api.views import EventBatchApi
from touchpoints.views import hq

hq_urlpatterns = [
    path("imports/", hq.imports, name="imports"),
    path("imports/<int:job_id>/", hq.import_detail, name="import-detail"),
    path("imports/<int:job_id>/cancel/", hq.import_cancel, name="import-cancel"),
    path(
        "imports/<int:job_id>/errors.<str:file_format>",
        hq.import_error_report,
        name="import-errors",
    ),
    path("imports/template/<str:kind>.csv", hq.import_template, name="import-template"),
    path("imports/mappings/", hq.mapping_list, name="import-mappings"),
    path("imports/mappings/<int:mapping_id>/", hq.mapping_edit, name="import-mapping-edit"),
]

api_urlpatterns = [
    path("events", EventBatchApi.as_view(), name="events"),
]
