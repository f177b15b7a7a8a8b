"""The guide-assisted consent form on /m/: a customer tells their guide yes or no."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.models import ConsentChannel, ConsentPurpose

# How a customer tells their guide.
GUIDE_CHANNELS = [
    (ConsentChannel.STORE, ConsentChannel.STORE.label),
    (ConsentChannel.WECOM, ConsentChannel.WECOM.label),
    (ConsentChannel.PHONE, ConsentChannel.PHONE.label),
]


class GuideConsentForm(forms.Form):
    purpose = forms.ChoiceField(label=_("Purpose"), choices=ConsentPurpose.choices)
    granted = forms.TypedChoiceField(
        label=_("Decision"),
        choices=[("1", _("Consents")), ("0", _("Withdraws"))],
        coerce=lambda value: value == "1",
    )
    channel = forms.ChoiceField(
        label=_("The customer told me"), choices=GUIDE_CHANNELS, initial=ConsentChannel.STORE
    )
