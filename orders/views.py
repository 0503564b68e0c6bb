from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness probe for the reverse proxy: the process answers HTTP."""
    return JsonResponse({"ok": True})
