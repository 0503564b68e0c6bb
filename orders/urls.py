from django.urls import path

from orders import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
]
