"""The experiment editor's form: validated by the same rules as the API
(lib/experiment_rules.py), each rule error shown beside its field."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from recsys_experiments.lib.errors import IllegalTransition, InvalidInput
from recsys_experiments.lib.experiment_rules import clean_definition
from recsys_experiments.lib.knobs import KNOBS
from recsys_experiments.lib.text import MAX_JSON_DEPTH
from recsys_experiments.models import Experiment, Platform
from recsys_experiments.services.experiments import experiment_check_edit

# Where each rule error path is shown in the form.
ERROR_FIELDS = {
    "key": "key",
    "description": "description",
    "traffic": "traffic",
    "namespace": "namespace_name",
    "namespace.name": "namespace_name",
    "namespace.start": "namespace_start",
    "namespace.end": "namespace_end",
    "targeting": "min_app_version",
    "targeting.platform": "platform",
    "targeting.min_app_version": "min_app_version",
    "targeting.max_app_version": "max_app_version",
    "guardrails": "guardrails",
    "sequential_testing": "sequential_testing",
}


class IndentedJSONField(forms.JSONField):
    """One variant per line in the editor, not one long line."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:  # json.loads gives up on deep nesting this way
            raise ValidationError(
                f"is nested too deeply: at most {MAX_JSON_DEPTH} levels", code="invalid"
            ) from None

    def bound_data(self, data, initial):
        # A form shown again with errors keeps the text as typed: decoding it once more
        # could fail the same way, and a decoded "\ud800" escape could not even be sent.
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class ExperimentForm(forms.ModelForm):
    variants = IndentedJSONField(
        widget=forms.Textarea(attrs={"rows": 14, "cols": 80, "class": "recsys-variants"}),
        help_text=(
            'A JSON list: [{"name": "control", "weight": 0.5, "config": {}}, …]. At least two '
            "variants; weights > 0 summing to 1 (± 0.01); config keys are ranking knobs: "
            + ", ".join(sorted(KNOBS))
            + "."
        ),
        initial=[
            {"name": "control", "weight": 0.5, "config": {}},
            {"name": "treatment", "weight": 0.5, "config": {}},
        ],
    )
    guardrails = IndentedJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text='Optional, e.g. [{"metric": "like_rate", "max_drop": 0.02}, '
        '{"metric": "untagged_impressions", "max_share": 0.01}].',
    )
    platform = forms.ChoiceField(choices=[("", "any platform"), *Platform.choices], required=False)

    class Meta:
        model = Experiment
        fields = (
            "key",
            "description",
            "variants",
            "traffic",
            "namespace_name",
            "namespace_start",
            "namespace_end",
            "platform",
            "min_app_version",
            "max_app_version",
            "guardrails",
            "sequential_testing",
        )
        widgets = {"key": forms.TextInput(attrs={"size": 40})}
        help_texts = {
            "traffic": "Share of users enrolled, 0 to 1.",
            "namespace_name": "Experiments sharing a namespace with disjoint ranges exclude "
            "each other. Leave the three namespace fields empty for none.",
            "min_app_version": "Dotted digits; bounds are inclusive.",
            "sequential_testing": "Results use always-valid (sequential) confidence intervals "
            "and p-values, safe to check daily; unticked: fixed-horizon ones, valid only when "
            "read once at the planned end.",
        }

    def clean_platform(self):
        return self.cleaned_data["platform"] or None  # "any platform" is NULL, not ""

    def _value(self, field: str):
        if field in self.cleaned_data:
            return self.cleaned_data[field]
        return getattr(self.instance, field)  # a read-only field keeps the stored value

    def clean(self):
        cleaned = super().clean()
        namespace = [self._value(f) for f in ("namespace_name", "namespace_start", "namespace_end")]
        data = {
            "key": self._value("key"),
            "description": self._value("description") or "",
            "variants": self._value("variants"),
            "salt": self.instance.salt or None,
            "traffic": self._value("traffic"),
            "namespace": None
            if all(part in (None, "") for part in namespace)
            else dict(zip(("name", "start", "end"), namespace, strict=True)),
            "targeting": {
                rule: self._value(rule) or None
                for rule in ("platform", "min_app_version", "max_app_version")
            },
            "guardrails": self._value("guardrails") or [],
            "sequential_testing": bool(self._value("sequential_testing")),
        }
        try:
            self.definition = clean_definition(data)
            # Not `instance.pk`: a new experiment has its uuid from the start.
            if not self.instance._state.adding:
                experiment_check_edit(self.instance, self.definition)
        except InvalidInput as error:
            for path_name, reasons in error.errors.items():
                field = ERROR_FIELDS.get(path_name)
                if field is None and path_name.startswith(("variants", "guardrails")):
                    field = path_name.split("[")[0]
                message = "; ".join(reasons)
                if field in self.fields:
                    self.add_error(
                        field, message if field == path_name else f"{path_name}: {message}"
                    )
                else:
                    self.add_error(None, f"{path_name}: {message}")
        except IllegalTransition as error:
            self.add_error(None, error.message)
        return cleaned
