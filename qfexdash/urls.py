from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from orders.live.metrics import metrics_view
from orders.signin.views import SignInView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Sign-in has its own words; accounts/ is for exchange accounts only (/ws/accounts/… for their live sockets).
    path("signin/", SignInView.as_view(), name="signin"),
    # Django's LogoutView accepts POST only, so a link or an image tag cannot sign anybody out.
    path("signout/", auth_views.LogoutView.as_view(), name="signout"),
    # Prometheus metrics of this process, for the addresses in QFEXDASH_METRICS_ALLOW only (orders/live/metrics.py).
    path("metrics", metrics_view, name="metrics"),
    path("", include("orders.urls")),
]
