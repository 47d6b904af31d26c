import argparse
import json

from django.core.management.base import CommandError
from django.utils import timezone

from recsys_experiments.lib.constants import EXPERIMENT_STATUSES, PLATFORMS
from recsys_experiments.lib.display import schedule_summary, split_summary
from recsys_experiments.lib.experiment_rules import parse_timestamp
from recsys_experiments.lib.text import shown
from recsys_experiments.management.base import SOURCE, RecsysCommand
from recsys_experiments.selectors import (
    auto_assignments_count,
    experiment_list,
    experiment_representation,
)
from recsys_experiments.services.experiments import (
    experiment_activate,
    experiment_create,
    experiment_delete,
    experiment_duplicate,
    experiment_end,
    experiment_rotate_salt,
    experiment_update,
    experiments_tick,
)


def parse_variant(text: str) -> dict:
    """NAME=WEIGHT or NAME=WEIGHT:CONFIG_JSON"""
    name, _, rest = text.partition("=")
    weight_text, _, config_text = rest.partition(":")
    try:
        weight = float(weight_text)
        config = json.loads(config_text) if config_text else {}
    except (ValueError, RecursionError) as error:  # RecursionError: JSON nested too deeply
        raise CommandError(
            f"--variant '{shown(text)}': expected NAME=WEIGHT[:CONFIG_JSON]"
        ) from error
    return {"name": name, "weight": weight, "config": config}


def parse_namespace(text: str) -> dict:
    """NAME:START:END"""
    try:
        name, start, end = text.split(":")
        return {"name": name, "start": float(start), "end": float(end)}
    except ValueError as error:
        raise CommandError(f"--namespace '{shown(text)}': expected NAME:START:END") from error


class Command(RecsysCommand):
    help = (
        "Manage experiments: list, show, create, schedule, activate, end, duplicate, "
        "rotate-salt, delete, tick."
    )

    def add_actions(self, subparsers):
        listing = subparsers.add_parser("list", help="list experiments")
        listing.add_argument("--status", choices=EXPERIMENT_STATUSES)
        self.add_json_flag(listing)

        show = subparsers.add_parser("show", help="show one experiment")
        show.add_argument("key")
        self.add_json_flag(show)

        create = subparsers.add_parser("create", help="create a draft experiment")
        create.add_argument("--key", required=True)
        create.add_argument("--description", default="")
        create.add_argument(
            "--variant",
            action="append",
            default=[],
            metavar="NAME=WEIGHT[:CONFIG_JSON]",
            help="repeat for each variant, e.g. --variant control=0.5 --variant treatment=0.5",
        )
        create.add_argument("--variants", metavar="JSON", help="the variants as a JSON array")
        create.add_argument("--salt", help="ASCII salt (generated when omitted)")
        create.add_argument("--traffic", type=float, help="share of users enrolled, 0-1")
        create.add_argument("--namespace", metavar="NAME:START:END")
        create.add_argument("--platform", choices=PLATFORMS)
        create.add_argument("--min-app-version")
        create.add_argument("--max-app-version")
        create.add_argument(
            "--guardrails", metavar="JSON", help='e.g. [{"metric": "like_rate", "max_drop": 0.02}]'
        )
        create.add_argument(
            "--sequential-testing",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="always-valid (sequential) CIs and p-values in the results (the default); "
            "--no-sequential-testing: fixed-horizon",
        )
        create.add_argument(
            "--start", metavar="ISO_TIME", help="scheduled start, e.g. 2026-12-01T09:00:00+00:00"
        )
        create.add_argument("--end", metavar="ISO_TIME", help="scheduled end")
        self.add_json_flag(create)

        schedule = subparsers.add_parser(
            "schedule",
            help="set or clear the scheduled start (drafts) and end (drafts, active)",
        )
        schedule.add_argument("key")
        schedule.add_argument("--start", metavar="ISO_TIME|none")
        schedule.add_argument("--end", metavar="ISO_TIME|none")
        self.add_json_flag(schedule)

        tick = subparsers.add_parser(
            "tick",
            help="activate drafts whose scheduled start has come, end active experiments "
            "whose scheduled end has passed (run from cron every minute)",
        )
        tick.add_argument("--now", metavar="ISO_TIME", help="act as if it were this time")
        self.add_json_flag(tick)

        delete = subparsers.add_parser("delete", help="delete a draft (audited)")
        delete.add_argument("key")
        self.add_yes_flag(delete, "the draft and its manual overrides are deleted")
        self.add_json_flag(delete)

        activate = subparsers.add_parser("activate", help="start a draft experiment")
        activate.add_argument("key")
        self.add_json_flag(activate)

        end = subparsers.add_parser("end", help="end an active experiment (final)")
        end.add_argument("key")
        self.add_yes_flag(end, "ending is final; an ended experiment is never reactivated")
        self.add_json_flag(end)

        duplicate = subparsers.add_parser("duplicate", help="copy as a new draft with a new salt")
        duplicate.add_argument("key")
        duplicate.add_argument("--new-key", help="default: <key>_copy")
        self.add_json_flag(duplicate)

        rotate = subparsers.add_parser(
            "rotate-salt", help="new salt: re-randomise automatic assignments, keep manual ones"
        )
        rotate.add_argument("key")
        self.add_yes_flag(rotate, "automatic assignments are deleted and re-hashed")
        self.add_json_flag(rotate)

    def report(self, experiment, *, as_json: bool, message: str) -> None:
        if as_json:
            self.emit_json(experiment_representation(experiment))
        else:
            self.stdout.write(message)

    def handle_list(self, *, status, as_json, **options):
        experiments = list(experiment_list(status=status))
        if as_json:
            self.emit_json(
                [
                    {**experiment_representation(e), "enrolled_users": e.enrolled_users}
                    for e in experiments
                ]
            )
            return
        if not experiments:
            self.stdout.write("no experiments")
            return
        self.stdout.write(f"{'KEY':32} {'STATUS':7} {'TRAFFIC':>7} {'USERS':>7}  SPLIT")
        now = timezone.now()
        for e in experiments:
            schedule = schedule_summary(
                status=e.status, started_at=e.started_at, ended_at=e.ended_at, now=now
            )
            self.stdout.write(
                f"{e.key:32} {e.status:7} {e.traffic:>7.0%} {e.enrolled_users:>7}  "
                f"{split_summary(e.variants)}" + (f"  [{schedule}]" if schedule else "")
            )

    def handle_show(self, *, key, as_json, **options):
        representation = experiment_representation(self.get_experiment(key))
        if as_json:
            self.emit_json(representation)
            return
        for field, value in representation.items():
            if field == "variants":
                self.stdout.write("variants:")
                for variant in value:
                    self.stdout.write(
                        f"  - {variant['name']}: weight {variant['weight']:.4g}, "
                        f"config {self._json(variant['config'])}"
                    )
            else:
                self.stdout.write(f"{field}: {self._json(value)}")

    @staticmethod
    def _json(value) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    def handle_create(self, **options):
        if options["variants"] and options["variant"]:
            raise CommandError("give either --variants JSON or --variant options, not both")
        if options["variants"]:
            try:
                variants = json.loads(options["variants"])
            except (ValueError, RecursionError) as error:
                raise CommandError(f"--variants: not valid JSON ({error})") from error
        else:
            variants = [parse_variant(text) for text in options["variant"]]
        targeting = {
            "platform": options["platform"],
            "min_app_version": options["min_app_version"],
            "max_app_version": options["max_app_version"],
        }
        data = {
            "key": options["key"],
            "description": options["description"],
            "variants": variants,
            "salt": options["salt"],
            "traffic": options["traffic"],
            "namespace": parse_namespace(options["namespace"]) if options["namespace"] else None,
            "targeting": {rule: value for rule, value in targeting.items() if value is not None},
            "guardrails": self._json_option(options, "guardrails"),
            "sequential_testing": options["sequential_testing"],
        }
        for field, option in (("started_at", "start"), ("ended_at", "end")):
            if options[option] is not None:
                data[field] = options[option]
        experiment = experiment_create(data=data, actor=None, source=SOURCE)
        message = f"created draft {experiment.key}"
        self.report(experiment, as_json=options["as_json"], message=message)

    @staticmethod
    def _json_option(options, name: str):
        if not options.get(name):
            return None
        try:
            return json.loads(options[name])
        except (ValueError, RecursionError) as error:
            raise CommandError(f"--{name}: not valid JSON ({error})") from error

    def handle_schedule(self, *, key, start, end, as_json, **options):
        if start is None and end is None:
            raise CommandError("give --start and/or --end (an ISO time, or none to clear)")
        data = {
            field: None if value.lower() == "none" else value
            for field, value in (("started_at", start), ("ended_at", end))
            if value is not None
        }
        experiment = experiment_update(
            experiment=self.get_experiment(key),
            data=data,
            partial=True,
            actor=None,
            source=SOURCE,
        )
        summary = schedule_summary(
            status=experiment.status,
            started_at=experiment.started_at,
            ended_at=experiment.ended_at,
            now=timezone.now(),
        )
        message = f"{experiment.key}: {summary or 'no schedule'}"
        self.report(experiment, as_json=as_json, message=message)

    def handle_tick(self, *, now, as_json, **options):
        moment = None
        if now is not None:
            moment = parse_timestamp(now)
            if moment is None:
                raise CommandError(
                    f"--now '{shown(now)}': expected an ISO 8601 time with a timezone"
                )
        results = experiments_tick(now=moment, source=SOURCE)
        failed = [result for result in results if result.error]
        if as_json:
            self.emit_json(
                [
                    {"key": result.key, "action": result.action, "error": result.error}
                    for result in results
                ]
            )
        else:
            for result in results:
                done = "activated" if result.action == "activate" else "ended"
                self.stdout.write(
                    f"{result.key}: not {done}: {result.error}"
                    if result.error
                    else f"{result.key}: {done} (scheduled)"
                )
            if not results:
                self.stdout.write("nothing due")
        if failed:
            raise CommandError(
                f"{len(failed)} scheduled change{'' if len(failed) == 1 else 's'} failed: "
                + ", ".join(result.key for result in failed)
            )

    def handle_delete(self, *, key, as_json, **options):
        experiment = self.get_experiment(key)
        if experiment.status != "draft":
            raise CommandError(
                f'cannot delete experiment "{key}": it is {experiment.status}; '
                "only drafts can be deleted"
            )
        users = experiment.assignments.count()
        self.require_yes(
            options,
            f"would delete draft {experiment.key} and its {users} manual override"
            f"{'' if users == 1 else 's'}" + ("; its key would be retired" if users else ""),
        )
        experiment_delete(experiment=experiment, actor=None, source=SOURCE)
        if as_json:
            self.emit_json({"deleted": key, "key_retired": bool(users)})
        else:
            self.stdout.write(
                f"deleted draft {key}" + (" (key retired: never reused)" if users else "")
            )

    def handle_activate(self, *, key, as_json, **options):
        experiment = experiment_activate(
            experiment=self.get_experiment(key), actor=None, source=SOURCE
        )
        self.report(experiment, as_json=as_json, message=f"activated {experiment.key}")

    def handle_end(self, *, key, as_json, **options):
        experiment = self.get_experiment(key)
        if experiment.status != "active":
            raise CommandError(f'cannot end experiment "{key}": it is {experiment.status}')
        self.require_yes(options, f"would end {experiment.key} for good")
        experiment = experiment_end(experiment=experiment, actor=None, source=SOURCE)
        self.report(experiment, as_json=as_json, message=f"ended {experiment.key}")

    def handle_duplicate(self, *, key, new_key, as_json, **options):
        copy = experiment_duplicate(
            experiment=self.get_experiment(key), new_key=new_key, actor=None, source=SOURCE
        )
        self.report(copy, as_json=as_json, message=f"duplicated {key} as draft {copy.key}")

    def handle_rotate_salt(self, *, key, as_json, **options):
        experiment = self.get_experiment(key)
        if experiment.status == "ended":
            raise CommandError(f'experiment "{key}" has ended; its salt is final')
        self.require_yes(
            options,
            f"would rotate the salt of {experiment.key}: "
            f"{auto_assignments_count(experiment)} automatic assignments re-randomised, "
            "manual ones kept",
        )
        experiment, deleted = experiment_rotate_salt(
            experiment=experiment, confirm=True, actor=None, source=SOURCE
        )
        if as_json:
            self.emit_json(
                {
                    "experiment": experiment_representation(experiment),
                    "auto_assignments_deleted": deleted,
                }
            )
        else:
            self.stdout.write(
                f"rotated the salt of {experiment.key}: {deleted} automatic assignments removed"
            )
