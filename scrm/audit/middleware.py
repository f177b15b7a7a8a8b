from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from scrm.audit import context


class AuditActorMiddleware:
    """Everything a request writes to an audited table is recorded as done by the
    signed-in staff member, from this path. After authentication; the actor is put back
    at the end of the request even when the view fails, so a persistent connection never
    lends it to the next request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        actor = context.Actor.of(getattr(request, "user", None), request.path)
        try:
            context.push(actor)
            return self.get_response(request)
        finally:
            context.pop()
