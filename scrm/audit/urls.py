from django.urls import path

from scrm.audit import views

hq_urlpatterns = [
    path("audit/", views.audit_list, name="audit"),
]
