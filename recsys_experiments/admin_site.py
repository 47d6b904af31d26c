"""The Django admin site (kept outside the admin package, whose import registers the model
admins on this very site): every admin page runs as the service database role, every model
admin registered on it is hardened against text the database cannot store, and the Recsys
section lists the pages registered with `register_page` beside the registered models: the
Assignments page (registered by the admin package) and the Diagnostics page (registered by
telemetry, which this app does not import)."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, wraps

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse

from recsys_experiments.db_roles import SERVICE_ROLE, acting_as
from recsys_experiments.lib.text import shown, unstorable_text_reason

RECSYS_APP = "recsys_experiments"


@dataclass(frozen=True)
class SitePage:
    """A page of the site that is no model's (see RecsysAdminSite.register_page)."""

    route: str
    view_factory: Callable
    name: str
    label: str
    allowed: Callable[[HttpRequest], bool]


class StorableLookupsChangeList(ChangeList):
    """A changelist whose query-string values (filters, search, ordering) all hold storable
    text. Django validates a filter value's type but not its text: `?status=%00` builds a
    query that PostgreSQL refuses when the page is rendered, a server error. Raising
    IncorrectLookupParameters here makes the changelist redirect to `?e=1` like for any
    other bad filter."""

    def get_queryset(self, request, exclude_parameters=None):
        for name, values in self.filter_params.items():
            for text in (name, *values):
                reason = unstorable_text_reason(text)
                if reason:
                    raise IncorrectLookupParameters(f"{shown(name)}: {reason}")
        return super().get_queryset(request, exclude_parameters)


@cache
def storable_lookups(changelist: type[ChangeList]) -> type[ChangeList]:
    if issubclass(changelist, StorableLookupsChangeList):
        return changelist
    return type(changelist.__name__, (StorableLookupsChangeList, changelist), {})


class StorableTextModelAdmin(admin.ModelAdmin):
    """Mixed into every model admin of the site (see RecsysAdminSite.register)."""

    def get_changelist(self, request, **kwargs):
        return storable_lookups(super().get_changelist(request, **kwargs))

    def get_search_results(self, request, queryset, search_term):
        # The changelist's search form refuses a NUL already; other callers (the
        # autocomplete view) pass the term straight through.
        if unstorable_text_reason(search_term):
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def get_object(self, request, object_id, from_field=None):
        # Like a malformed id: None, which the admin's views answer with "doesn't exist".
        if unstorable_text_reason(object_id):
            return None
        return super().get_object(request, object_id, from_field)

    def changelist_view(self, request, extra_context=None):
        # A changelist POST (an action, or list_editable's save) filters by the posted ids
        # before any form validates them: a NUL there is a DataError.
        if request.method == "POST":
            for name, values in request.POST.lists():
                for text in (name, *values):
                    reason = unstorable_text_reason(text)
                    if reason:
                        self.message_user(
                            request, f"Nothing changed: {shown(name)} {reason}.", messages.ERROR
                        )
                        return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)

    def response_action(self, request, queryset):
        # Django filters by the selected ids unchecked: one that is no valid primary key
        # (not a uuid, for a uuid key) raised ValidationError, a server error.
        to_python = self.opts.pk.to_python
        try:
            for selected in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                to_python(selected)
        except ValidationError:
            self.message_user(
                request, "Nothing changed: the selection names no valid item.", messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


class RecsysAdminSite(admin.AdminSite):
    site_header = "Recsys Experiments"
    site_title = "Recsys Experiments admin"
    index_title = "Experiments, assignments and telemetry"
    # The sidebar would squeeze the experiment tables and charts at 1280 px.
    enable_nav_sidebar = False

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every model admin gains StorableTextModelAdmin, those of Django's and other
        libraries' apps included, so that no changelist filter, search or object id with a
        NUL in it reaches the database."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, StorableTextModelAdmin):
            admin_class = type(
                admin_class.__name__,
                (StorableTextModelAdmin, admin_class),
                {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__},
            )
        super().register(model_or_iterable, admin_class, **options)

    def admin_view(self, view, cacheable=False):
        checked_view = super().admin_view(view, cacheable)

        @wraps(view)
        def as_service(request, *args, **kwargs):
            user = request.user
            if user.is_active and user.is_staff and connection.in_atomic_block:
                with acting_as(SERVICE_ROLE, user.pk):
                    return checked_view(request, *args, **kwargs)
            return checked_view(request, *args, **kwargs)

        return as_service

    def __init__(self, name="admin"):
        super().__init__(name)
        self._pages: dict[str, SitePage] = {}

    def register_page(
        self,
        route: str,
        view_factory: Callable,
        name: str,
        *,
        label: str,
        allowed: Callable[[HttpRequest], bool],
    ) -> None:
        """Add a page that is no model's at `route`, named `admin:<name>` and listed in the
        Recsys section as `label` for the users `allowed(request)` lets see it.
        `view_factory(site)` returns the view, which the site wraps in `admin_view` (login,
        staff, the service role). Called from the admin package or an app's
        AppConfig.ready(), before the URLs are first built; the same name again replaces."""
        self._pages[name] = SitePage(route, view_factory, name, label, allowed)

    def get_urls(self):
        custom = [
            path(page.route, self.admin_view(page.view_factory(self)), name=page.name)
            for page in self._pages.values()
        ]
        return custom + super().get_urls()

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        for app in apps:
            if app["app_label"] != RECSYS_APP:
                continue
            for page in self._pages.values():
                if page.allowed(request):
                    app["models"].append(
                        {
                            "name": page.label,
                            "object_name": page.label,
                            "admin_url": reverse(f"admin:{page.name}"),
                            "view_only": True,
                            "perms": {"view": True},
                        }
                    )
            app["models"].sort(key=lambda model: model["name"])
        return apps
