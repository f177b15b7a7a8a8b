"""The SMS provider's callbacks (no login: the body's signature is the proof)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns.services.sms_replies import MAX_BODY_BYTES, SIGNATURE_HEADER, sms_replies_receive
from members.services.errors import MemberError


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    """Replies members texted to our SMS. Answers as Aliyun's push expects (`code` 0) once
    handled — an unknown number or an ordinary text included, or the provider would push
    it again; a forged push is 403 and a malformed one 400, with nothing written."""
    length = request.headers.get("Content-Length") or "0"
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return JsonResponse({"code": "body_too_large", "msg": "body too large"}, status=413)
    try:
        entries = sms_replies_receive(
            body=request.body, signature=request.headers.get(SIGNATURE_HEADER, "")
        )
    except MemberError as exc:
        return JsonResponse({"code": exc.code, "msg": str(exc.message)}, status=exc.status)
    return JsonResponse({"code": 0, "msg": "成功", "withdrawn": len(entries)})
