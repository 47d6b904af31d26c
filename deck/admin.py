from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from recsys_experiments.lib.errors import IllegalTransition, InvalidInput
from recsys_experiments.lib.knobs import KNOBS

from .models import BINDING_KINDS, MediaItem, RankingProfile, RankingProfileVersion
from .profiles import ranking_profile_delete, ranking_profile_problems, ranking_profile_save


@admin.register(MediaItem)
class MediaItemAdmin(admin.ModelAdmin):
    list_display = ("title", "year", "genres", "popularity")
    search_fields = ("title", "external_id")
    ordering = ("-popularity",)


class ConcurrentChange(Exception):
    """Another save took a binding, the name or the default flag while this form was checked."""


def knob_field_name(knob: str) -> str:
    return f"knob_{knob}"


def bindings_text(bindings: list) -> str:
    return "\n".join(f"{kind}: {value}" for binding in bindings for kind, value in binding.items())


def knob_form_field(knob) -> forms.Field:
    field_class = forms.IntegerField if knob.kind is int else forms.FloatField
    return field_class(
        label=knob.name,
        required=False,
        help_text=(
            f"{knob.meaning}; {knob.minimum} to {knob.maximum}. "
            f"Blank: inherit (built-in {knob.default})."
        ),
    )


class RankingProfileFormBase(forms.ModelForm):
    """One field per knob (blank: inherit from the layer below) and the bindings one per line
    (`segment: cold_start`, `namespace: acme`). Validation is the service's
    (deck.profiles.ranking_profile_problems), each error shown at its field."""

    bindings_lines = forms.CharField(
        label="Bindings",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 40}),
        help_text=(
            "One per line: <code>segment: NAME</code> (a user's segment) or "
            "<code>namespace: NAME</code> (the user's customer fixture). A binding belongs to "
            "one profile only. Blank: the profile applies to nobody unless it is the default."
        ),
    )

    class Meta:
        model = RankingProfile
        fields = ("name", "is_default")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for name, value in self.instance.knobs.items():
                if name in KNOBS:
                    self.fields[knob_field_name(name)].initial = value
            self.fields["bindings_lines"].initial = bindings_text(self.instance.bindings)

    def parsed_bindings(self) -> list:
        bindings = []
        for number, line in enumerate(self.cleaned_data.get("bindings_lines", "").splitlines(), 1):
            if not line.strip():
                continue
            kind, separator, value = line.partition(":")
            if not separator or kind.strip() not in BINDING_KINDS:
                self.add_error(
                    "bindings_lines",
                    f"line {number}: write 'segment: NAME' or 'namespace: NAME'",
                )
                continue
            bindings.append({kind.strip(): value.strip()})
        return bindings

    def clean(self):
        cleaned = super().clean()
        knobs = {
            name: cleaned[knob_field_name(name)]
            for name in KNOBS
            if cleaned.get(knob_field_name(name)) is not None
        }
        bindings = self.parsed_bindings()
        if self.errors:
            return cleaned
        problems = ranking_profile_problems(
            name=cleaned.get("name"),
            knobs=knobs,
            bindings=bindings,
            profile=self.instance if self.instance.pk else None,
        )
        for field, reasons in problems.items():
            for reason in reasons:
                self.add_error(*self.error_place(field, reason))
        cleaned["knobs"], cleaned["bindings"] = knobs, bindings
        return cleaned

    def error_place(self, field: str, reason: str) -> tuple[str | None, str]:
        if field.startswith("knobs."):
            name = field.removeprefix("knobs.")
            if name in KNOBS:
                return knob_field_name(name), reason
        if field.startswith("bindings["):
            index = int(field[len("bindings[") : field.index("]")])
            return "bindings_lines", f"line {self.binding_line(index)}: {reason}"
        if field in ("name", "is_default"):
            return field, reason
        return None, f"{field}: {reason}"

    def binding_line(self, index: int) -> int:
        lines = self.cleaned_data.get("bindings_lines", "").splitlines()
        filled = [number for number, line in enumerate(lines, 1) if line.strip()]
        return filled[index] if index < len(filled) else index + 1


# The knob fields are declared fields (the admin checks its fieldsets against those).
RankingProfileForm = type(
    "RankingProfileForm",
    (RankingProfileFormBase,),
    {knob_field_name(name): knob_form_field(knob) for name, knob in KNOBS.items()},
)


class RankingProfileVersionInline(admin.TabularInline):
    model = RankingProfileVersion
    fk_name = "profile"
    verbose_name = "version"
    verbose_name_plural = "History (every saved version)"
    fields = ("version", "knobs", "bindings", "is_default", "changed_by", "changed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-version",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RankingProfile)
class RankingProfileAdmin(admin.ModelAdmin):
    """Profiles are written through deck.profiles.ranking_profile_save: version, history and
    the default switch in one transaction."""

    form = RankingProfileForm
    list_display = ("name", "version", "is_default", "bound_to", "knob_overrides", "updated_at")
    list_filter = ("is_default",)
    search_fields = ("name",)
    readonly_fields = ("version", "updated_at", "updated_by")
    inlines = (RankingProfileVersionInline,)

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ("name", "is_default", "bindings_lines")}),
            (
                "Knobs (blank: inherit from the default profile, then the built-in value)",
                {"fields": [knob_field_name(name) for name in KNOBS]},
            ),
            ("Version", {"fields": ("version", "updated_at", "updated_by")}),
        ]

    @admin.display(description="bound to")
    def bound_to(self, profile):
        return ", ".join(bindings_text(profile.bindings).splitlines()) or "—"

    @admin.display(description="knobs set")
    def knob_overrides(self, profile):
        return ", ".join(f"{name}={value}" for name, value in profile.knobs.items()) or "—"

    def save_model(self, request, obj, form, change):
        try:
            saved = ranking_profile_save(
                profile=obj if obj.pk else None,
                name=form.cleaned_data["name"],
                knobs=form.cleaned_data["knobs"],
                bindings=form.cleaned_data["bindings"],
                is_default=form.cleaned_data["is_default"],
                actor=request.user,
            )
        except InvalidInput as error:
            # Only a concurrent save can get here (the form checked the same rules):
            # changeform_view rolls back and shows the form again with the reason.
            raise ConcurrentChange(error.message) from None
        obj.pk = saved.pk
        obj.refresh_from_db()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ConcurrentChange as error:
            self.message_user(request, f"Not saved: {error}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through the service's check
        return actions

    def delete_model(self, request, obj):
        try:
            ranking_profile_delete(profile=obj)
        except IllegalTransition as error:
            self.message_user(request, error.message, messages.ERROR)
