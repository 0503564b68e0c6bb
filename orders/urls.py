from django.urls import path

from orders import views
from orders.signin import sessions, two_factor

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.account_list, name="account_list"),
    path("accounts/<int:pk>/", views.account_detail, name="account_detail"),
    path("accounts/all/", views.all_accounts_live, name="all_accounts_live"),
    path("my/accounts/", views.my_accounts, name="my_accounts"),
    path("my/accounts/add/", views.my_account_add, name="my_account_add"),
    path("my/accounts/<int:pk>/edit/", views.my_account_edit, name="my_account_edit"),
    path("my/accounts/<int:pk>/disable/", views.my_account_set_enabled, {"enabled": False}, name="my_account_disable"),
    path("my/accounts/<int:pk>/enable/", views.my_account_set_enabled, {"enabled": True}, name="my_account_enable"),
    path("my/accounts/<int:pk>/delete/", views.my_account_delete, name="my_account_delete"),
    path("audit/", views.audit_trail, name="audit_trail"),
    path("signin/two-step/", two_factor.verify, name="two_factor_verify"),
    path("signin/two-step/setup/", two_factor.setup, name="two_factor_setup"),
    path("signin/two-step/recovery-codes/", two_factor.recovery_codes, name="two_factor_recovery_codes"),
    path("signin/sessions/", sessions.your_sessions, name="your_sessions"),
    path("preferences/display/", views.preferences_display, name="preferences_display"),
    path("preferences/columns/", views.preferences_columns, name="preferences_columns"),
]
