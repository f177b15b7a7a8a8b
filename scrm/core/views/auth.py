from typing import Any

from django.contrib.auth import views as auth_views
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from scrm.core.forms import LoginForm


class LoginView(auth_views.LoginView):
    """One login for everybody; HQ roles land on /hq/, guides on /m/.

    `/m/login/` renders the same form laid out for a phone.
    """

    form_class = LoginForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True
    mobile = False

    def get_template_names(self) -> list[str]:
        return ["mobile/login.html" if self.mobile else "registration/login.html"]

    def get_success_url(self) -> str:
        user: Any = self.request.user
        target = self.get_redirect_url()
        allowed = url_has_allowed_host_and_scheme(
            target,
            allowed_hosts={self.request.get_host()},
            require_https=self.request.is_secure(),
        )
        if target and allowed:
            # A saved link to the other workspace would only end on a 403: go home instead.
            if (
                target.startswith("/hq/")
                and not user.can_use_hq
                or target.startswith("/m/")
                and not user.can_use_mobile
                or target.startswith("/admin/")
                and not user.is_staff
            ):
                target = ""
            if target:
                return target
        return reverse(user.landing_url_name)


class LogoutView(auth_views.LogoutView):
    next_page = "login"
