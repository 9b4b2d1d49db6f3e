"""The Jobs page's run form: run now, a dry run, or (after a destructive job's preview) the
real run, which needs the confirmation ticked."""

from __future__ import annotations

from django import forms


class RunJobForm(forms.Form):
    dry_run = forms.ChoiceField(choices=[("1", "dry run")], required=False)
    confirm = forms.ChoiceField(choices=[("yes", "I checked the preview")], required=False)

    @property
    def is_dry_run(self) -> bool:
        return self.cleaned_data.get("dry_run") == "1"

    @property
    def is_confirmed(self) -> bool:
        return self.cleaned_data.get("confirm") == "yes"
