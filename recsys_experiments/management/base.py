"""Shared base for the ops commands: finding experiments and users, `--json` output, and
turning every domain error into one readable line with a non-zero exit."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from recsys_experiments.db_roles import SERVICE_ROLE, acting_as
from recsys_experiments.lib.errors import DomainError
from recsys_experiments.models import Experiment
from recsys_experiments.selectors import experiment_get, user_find

SOURCE = "command"


class RecsysCommand(BaseCommand):
    """The base of every recsys command. Either

    - an action command: `add_actions(subparsers)` and `handle_<action>(**options)`, or
    - a single command: `add_options(parser)` and `run(**options)`.

    A domain error becomes one CommandError line (a non-zero exit). With `service_transaction`
    (the default) the work runs in one transaction as the service role; commands that drive
    the end-user paths themselves (simulations, demo data) turn it off."""

    service_transaction = True

    def add_arguments(self, parser):
        if type(self).add_actions is RecsysCommand.add_actions:
            self.add_options(parser)
            return
        subparsers = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        self.add_actions(subparsers)

    def add_actions(self, subparsers) -> None:
        raise NotImplementedError

    def add_options(self, parser) -> None:
        """A single command's own arguments."""

    def run(self, **options) -> None:
        raise NotImplementedError

    @staticmethod
    def add_json_flag(parser, help_text: str = "print JSON instead of text") -> None:
        # Stored as `as_json`: a `json` option would shadow the json module in handlers.
        parser.add_argument("--json", dest="as_json", action="store_true", help=help_text)

    @staticmethod
    def add_yes_flag(parser, what: str) -> None:
        parser.add_argument("--yes", action="store_true", help=f"confirm: {what}")

    def handle(self, *args, action: str | None = None, **options):
        handler = getattr(self, "handle_" + action.replace("-", "_")) if action else self.run
        try:
            if not self.service_transaction:
                handler(**options)
                return
            with transaction.atomic(), acting_as(SERVICE_ROLE):
                handler(**options)
        except DomainError as error:
            raise CommandError(error.message) from error

    def get_experiment(self, key: str) -> Experiment:
        return experiment_get(key)

    def get_user(self, identifier: str):
        return user_find(identifier)

    def require_yes(self, options: dict, plan: str) -> None:
        if not options.get("yes"):
            raise CommandError(f"{plan}; re-run with --yes to confirm")

    def emit_json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2, default=str))
