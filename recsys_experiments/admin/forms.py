"""The experiment editor's form: validated by the same rules as the API
(lib/experiment_rules.py), each rule error shown beside its field.

The variants are edited as rows of a Django formset (`VariantFormSet`: name, weight, and the
config as one field per ranking knob with a raw-JSON fallback), rendered like a tabular
inline and driven by the admin's own inlines.js (add/remove rows). The model keeps its JSON
list: the formset is a form-level view of it. Weights are any positive numbers (70 and 30, a
percentage, 1/1/2) and are stored normalised to sum 1; the editor shows the stored weights
after a save."""

from __future__ import annotations

import json
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from recsys_experiments.lib.errors import IllegalTransition, InvalidInput
from recsys_experiments.lib.experiment_rules import (
    MAX_VARIANTS,
    SCHEDULE_FIELDS,
    check_schedule,
    clean_definition,
)
from recsys_experiments.lib.knobs import KNOBS
from recsys_experiments.lib.text import MAX_JSON_DEPTH
from recsys_experiments.models import Experiment, ExperimentStatus, Platform
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
    "started_at": "started_at",
    "ended_at": "ended_at",
}
VARIANT_ROW_PATH = re.compile(r"\Avariants\[(\d+)\](?:\.(name|weight|config)(?:\.(\w+))?)?")
KNOB_PREFIX = "knob_"
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


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


class ConfigJSONField(IndentedJSONField):
    """The raw-JSON fallback of a variant's config: blank when there is nothing in it."""

    def prepare_value(self, value):
        if value in ({}, None):
            return ""
        return super().prepare_value(value)


class WeightField(forms.FloatField):
    """A positive number, optionally written as a percentage ("70%")."""

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().removesuffix("%").strip()
        return super().to_python(value)


def weight_text(weight) -> str:
    return f"{weight:.10g}" if isinstance(weight, int | float) else str(weight)


class VariantForm(forms.Form):
    """One variant row. The knob fields are blank when the variant keeps the default; the
    raw JSON holds any other config keys (which the rules then name, if unknown)."""

    name = forms.CharField(
        max_length=64,
        widget=forms.TextInput(attrs={"size": 14, "class": "recsys-variant-name"}),
    )
    weight = WeightField(
        widget=forms.TextInput(attrs={"size": 7, "class": "recsys-weight", "inputmode": "decimal"}),
        help_text="any positive number or a percentage; stored normalised to sum 1",
    )
    config_json = ConfigJSONField(
        required=False,
        label="other config (JSON)",
        widget=forms.Textarea(attrs={"rows": 1, "cols": 24, "class": "recsys-config-json"}),
    )

    def __init__(self, *args, fixed_names: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for knob in KNOBS.values():
            field_class = forms.IntegerField if knob.kind is int else forms.FloatField
            self.fields[KNOB_PREFIX + knob.name] = field_class(
                required=False,
                min_value=knob.minimum,
                max_value=knob.maximum,
                label=knob.name,
                help_text=f"{knob.meaning} (default {knob.default})",
                widget=forms.NumberInput(
                    attrs={
                        "step": "1" if knob.kind is int else "any",
                        "placeholder": str(knob.default),
                        "class": "recsys-knob",
                        "title": f"{knob.meaning}; default {knob.default}",
                    }
                ),
            )
        if fixed_names:
            # An active experiment's variant names are fixed (lib/experiment_rules.py).
            self.fields["name"].disabled = True

    @property
    def knob_fields(self):
        return [self[KNOB_PREFIX + name] for name in KNOBS]

    @staticmethod
    def initial_for(variant: dict) -> dict:
        config = variant.get("config") or {}
        return {
            "name": variant.get("name"),
            "weight": weight_text(variant.get("weight")),
            **{KNOB_PREFIX + name: value for name, value in config.items() if name in KNOBS},
            "config_json": {name: v for name, v in config.items() if name not in KNOBS},
        }

    def clean(self):
        cleaned = super().clean()
        raw = cleaned.get("config_json") or {}
        if not isinstance(raw, dict):
            self.add_error("config_json", "must be a JSON object")
            return cleaned
        config = dict(raw)
        for name in KNOBS:
            value = cleaned.get(KNOB_PREFIX + name)
            if value is None:
                continue
            if name in config and config[name] != value:
                self.add_error("config_json", f"sets {name}, which its own field sets to {value}")
            config[name] = value
        cleaned["config"] = config
        return cleaned

    def variant(self) -> dict:
        return {
            "name": self.cleaned_data.get("name"),
            "weight": self.cleaned_data.get("weight"),
            "config": self.cleaned_data.get("config", {}),
        }


class BaseVariantFormSet(forms.BaseFormSet):
    def filled_forms(self) -> list[VariantForm]:
        """The rows that make up the variants: blank added rows are ignored."""
        return [
            form for form in self.forms if not (form.empty_permitted and not form.has_changed())
        ]


VariantFormSet = forms.formset_factory(
    VariantForm,
    formset=BaseVariantFormSet,
    extra=0,
    min_num=2,
    max_num=MAX_VARIANTS,
    validate_min=True,
    validate_max=True,
)
DEFAULT_VARIANTS = [
    {"name": "control", "weight": 0.5, "config": {}},
    {"name": "treatment", "weight": 0.5, "config": {}},
]


class ScheduleField(forms.DateTimeField):
    """A datetime-local input in the admin's time zone (seconds shown)."""

    def __init__(self, **kwargs):
        super().__init__(
            required=False,
            input_formats=[DATETIME_FORMAT, "%Y-%m-%dT%H:%M"],
            widget=forms.DateTimeInput(
                attrs={"type": "datetime-local", "step": "1"}, format=DATETIME_FORMAT
            ),
            **kwargs,
        )


class ExperimentForm(forms.ModelForm):
    guardrails = IndentedJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text='Optional, e.g. [{"metric": "like_rate", "max_drop": 0.02}, '
        '{"metric": "untagged_impressions", "max_share": 0.01}].',
    )
    platform = forms.ChoiceField(choices=[("", "any platform"), *Platform.choices], required=False)
    started_at = ScheduleField(
        label="Scheduled start",
        help_text="Optional, for a draft: `experiments tick` (cron) activates it at this time; "
        "it is not served before. Your time zone: the server's (TIME_ZONE).",
    )
    ended_at = ScheduleField(
        label="Scheduled end",
        help_text="Optional: serving stops at this time and `experiments tick` ends it with "
        "the same audit entry as a manual end.",
    )

    class Meta:
        model = Experiment
        fields = (
            "key",
            "description",
            "traffic",
            "namespace_name",
            "namespace_start",
            "namespace_end",
            "platform",
            "min_app_version",
            "max_app_version",
            "guardrails",
            "sequential_testing",
            "started_at",
            "ended_at",
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        status = ExperimentStatus.DRAFT if self.instance._state.adding else self.instance.status
        self.variants_editable = status != ExperimentStatus.ENDED
        self.variants_fixed_names = status == ExperimentStatus.ACTIVE
        self.variant_errors = forms.utils.ErrorList()
        variants = self.instance.variants if not self.instance._state.adding else None
        initial = [VariantForm.initial_for(v) for v in (variants or DEFAULT_VARIANTS)]
        self.variant_formset = None
        if self.variants_editable:
            self.variant_formset = VariantFormSet(
                self.data if self.is_bound else None,
                prefix="variants",
                initial=initial,
                form_kwargs={"fixed_names": self.variants_fixed_names},
            )
            if self.variants_fixed_names:
                # No rows added or removed: the formset keeps exactly the stored variants.
                self.variant_formset.max_num = len(initial)
                self.variant_formset.min_num = len(initial)
                self.variant_formset.extra = 0

    def is_valid(self):
        valid = super().is_valid()  # runs clean(), which checks the formset too
        return valid and (self.variant_formset is None or self.variant_formset.is_valid())

    @property
    def stored_variants(self) -> list[dict]:
        return self.instance.variants or []

    def _schedule_value(self, field: str):
        """The typed time, or the stored one when the field shows it unchanged (the input
        has no sub-second part), so resaving a form never moves a schedule."""
        if field not in self.fields or self.fields[field].disabled:
            return getattr(self.instance, field)
        value = self.cleaned_data.get(field)
        stored = getattr(self.instance, field)
        if value is not None and stored is not None:
            shown_stored = timezone.localtime(stored).replace(microsecond=0)
            if timezone.localtime(value) in (shown_stored, shown_stored.replace(second=0)):
                return stored
        return value

    def _variants_from_rows(self):
        formset = self.variant_formset
        if formset is None:
            return self.instance.variants
        if not formset.is_valid():
            return None
        self._variant_rows = formset.filled_forms()
        return [form.variant() for form in self._variant_rows]

    def _add_variant_error(self, path_name: str, message: str) -> bool:
        """Show a rule error about variants[i] on its row; False when it is not about a row."""
        match = VARIANT_ROW_PATH.match(path_name)
        rows = getattr(self, "_variant_rows", None)
        if not match or rows is None or int(match.group(1)) >= len(rows):
            return False
        form = rows[int(match.group(1))]
        part, knob = match.group(2), match.group(3)
        if part == "config" and knob in KNOBS:
            form.add_error(KNOB_PREFIX + knob, message)
        elif part == "config":
            form.add_error("config_json", f"{knob}: {message}" if knob else message)
        elif part in ("name", "weight") and not form.fields[part].disabled:
            form.add_error(part, message)
        else:
            form.add_error(None, f"{part or 'variant'}: {message}" if part else message)
        return True

    def clean_platform(self):
        return self.cleaned_data["platform"] or None  # "any platform" is NULL, not ""

    def _value(self, field: str):
        if field in self.cleaned_data:
            return self.cleaned_data[field]
        return getattr(self.instance, field)  # a read-only field keeps the stored value

    def clean(self):
        cleaned = super().clean()
        namespace = [self._value(f) for f in ("namespace_name", "namespace_start", "namespace_end")]
        variants = self._variants_from_rows()
        if variants is None:
            self.add_error(None, "Fix the variant rows marked below.")
            return cleaned
        data = {
            "key": self._value("key"),
            "description": self._value("description") or "",
            "variants": variants,
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
            "started_at": self._schedule_value("started_at"),
            "ended_at": self._schedule_value("ended_at"),
        }
        try:
            self.definition = clean_definition(data)
            # Not `instance.pk`: a new experiment has its uuid from the start.
            if not self.instance._state.adding:
                experiment_check_edit(self.instance, self.definition)
            else:
                _check_new_schedule(self.definition)
        except InvalidInput as error:
            for path_name, reasons in error.errors.items():
                if self._add_variant_error(path_name, "; ".join(reasons)):
                    continue
                field = ERROR_FIELDS.get(path_name)
                if field is None and path_name.startswith("guardrails"):
                    field = "guardrails"
                message = "; ".join(reasons)
                if path_name.startswith("variants"):
                    self.variant_errors.append(f"{path_name}: {message}")
                    self.add_error(None, f"{path_name}: {message}")
                elif field in self.fields:
                    self.add_error(
                        field, message if field == path_name else f"{path_name}: {message}"
                    )
                else:
                    self.add_error(None, f"{path_name}: {message}")
        except IllegalTransition as error:
            self.add_error(None, error.message)
        return cleaned


def _check_new_schedule(definition: dict) -> None:
    """A new experiment's schedule, checked as the create service checks it."""
    check_schedule(
        status=ExperimentStatus.DRAFT,
        current={},
        schedule={f: definition[f] for f in SCHEDULE_FIELDS if f in definition},
        now=timezone.now(),
    )
