"""The admin power calculator (admin:recsys_power_calculator, /admin/recsys/power-calculator/):
a conversion rate, a minimum detectable effect, the number of variants and the daily users
give the users per variant and the days an experiment needs (recsys_experiments/lib/power.py,
fixed-horizon, 80% power, alpha 0.05 two-sided). Registered by telemetry/admin_pages.py."""

from __future__ import annotations

from django.template.response import TemplateResponse

from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.power import ALPHA, CALCULATOR_FIELDS, MDE_TYPES, POWER, calculator
from recsys_experiments.lib.text import shown

DEFAULTS = {
    "baseline": "",
    "mde": "0.05",
    "mde_type": "relative",
    "variants": "2",
    "daily_users": "",
}


def calculator_view(site):
    def view(request):
        # Echoed into the form as typed (auto-escaped), bounded in length.
        values = {
            name: shown(request.GET.get(name, DEFAULTS[name]), limit=40)
            for name in CALCULATOR_FIELDS
        }
        result, errors = None, {}
        if "baseline" in request.GET:
            try:
                result = calculator({name: request.GET.get(name) for name in CALCULATOR_FIELDS})
            except InvalidInput as error:
                errors = {name: "; ".join(reasons) for name, reasons in error.errors.items()}
        return TemplateResponse(
            request,
            "admin/recsys_experiments/power_calculator.html",
            {
                **site.each_context(request),
                "title": "Power calculator",
                "values": values,
                "errors": errors,
                "result": result,
                "mde_types": MDE_TYPES,
                "alpha": ALPHA,
                "power": POWER,
            },
        )

    return view
