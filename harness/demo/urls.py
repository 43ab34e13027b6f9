from django.urls import path

from harness.demo.views import Ping

urlpatterns = [path("api/ping/", Ping.as_view())]
