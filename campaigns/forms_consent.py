"""The guide-assisted consent form on /m/: a customer tells their guide yes or no."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.models import ConsentChannel, ConsentPurpose
from campaigns.services.consent import NOTE_MAX_LENGTH

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


# How a member told head office or their store.
HQ_CHANNELS = [
    (ConsentChannel.PAPER, ConsentChannel.PAPER.label),
    (ConsentChannel.PHONE, ConsentChannel.PHONE.label),
    (ConsentChannel.STORE, ConsentChannel.STORE.label),
    (ConsentChannel.WECOM, ConsentChannel.WECOM.label),
    (ConsentChannel.BACK_OFFICE, _("Other (see the note)")),
]


class HqConsentForm(GuideConsentForm):
    """A decision a member made outside the mini-program, recorded on their profile: the
    guide's form with head office's channels and a note."""

    channel = forms.ChoiceField(
        label=_("The member told us by"), choices=HQ_CHANNELS, initial=ConsentChannel.PAPER
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=NOTE_MAX_LENGTH,
        required=False,
        help_text=_("Where the proof is kept, e.g. the form's number."),
    )
