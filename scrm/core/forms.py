from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from scrm.org.selectors import staff_by_username


class LoginForm(AuthenticationForm):
    error_messages = {
        "invalid_login": _(
            "Wrong username or password. Both are case-sensitive; check Caps Lock and try again."
        ),
        "inactive": _("This account has been disabled. Ask your administrator to re-enable it."),
        "no_role": _("This account has no role yet. Ask your administrator to assign one."),
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            self.user_cache = authenticate(self.request, username=username, password=password)
            if self.user_cache is None:
                # The auth backend refuses disabled accounts without saying why; when the
                # password is right, tell the person their account is disabled.
                staff = staff_by_username(username)
                if staff is not None and not staff.is_active and staff.check_password(password):
                    raise forms.ValidationError(self.error_messages["inactive"], code="inactive")
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if not (user.can_use_hq or user.can_use_mobile):
            raise forms.ValidationError(self.error_messages["no_role"], code="no_role")
