from django.urls import URLPattern

hq_urlpatterns: list[URLPattern] = []
