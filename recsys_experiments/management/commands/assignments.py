from recsys_experiments.management.base import SOURCE, RecsysCommand
from recsys_experiments.selectors import user_assignments
from recsys_experiments.services.assignments import assignment_override, assignment_reset


class Command(RecsysCommand):
    help = "A user's experiment variants: show, set (manual override), reset (back to auto)."

    def add_actions(self, subparsers):
        show = subparsers.add_parser("show", help="a user's assignments and active experiments")
        show.add_argument("user", help="uuid, username or email")
        self.add_json_flag(show)

        force = subparsers.add_parser("set", help="force a variant (manual override)")
        force.add_argument("key", help="experiment key")
        force.add_argument("user", help="uuid, username or email")
        force.add_argument("variant")
        self.add_json_flag(force)

        reset = subparsers.add_parser("reset", help="delete the assignment: back to the hash")
        reset.add_argument("key", help="experiment key")
        reset.add_argument("user", help="uuid, username or email")
        self.add_yes_flag(reset, "the user's stored variant is deleted")
        self.add_json_flag(reset)

    def handle_show(self, *, user, as_json, **options):
        state = user_assignments(self.get_user(user))
        if as_json:
            self.emit_json(state)
            return
        who = state["user"]
        self.stdout.write(f"user {who['username']} <{who['email']}> {who['id']}")
        if not state["active_experiments"] and not state["assignments"]:
            self.stdout.write("no active experiments and no assignments")
        for row in state["active_experiments"]:
            self.stdout.write(
                f"  {row['experiment_key']:32} {row['variant'] or '-':16} "
                f"{row['assignment_mode']:10} hash: {row['hashed_variant'] or 'not enrolled'}"
            )
        active_keys = {row["experiment_key"] for row in state["active_experiments"]}
        for row in state["assignments"]:
            if row["experiment_key"] not in active_keys:
                self.stdout.write(
                    f"  {row['experiment_key']:32} {row['variant']:16} "
                    f"{row['assignment_mode']:10} (experiment not active)"
                )

    def handle_set(self, *, key, user, variant, as_json, **options):
        experiment, target = self.get_experiment(key), self.get_user(user)
        assignment = assignment_override(
            experiment=experiment, user=target, variant=variant, actor=None, source=SOURCE
        )
        result = {
            "experiment_key": experiment.key,
            "user": str(target.pk),
            "variant": assignment.variant,
            "assignment_mode": assignment.assignment_mode,
        }
        if as_json:
            self.emit_json(result)
        else:
            self.stdout.write(f"{target.username} is now {variant} in {key} (manual)")

    def handle_reset(self, *, key, user, as_json, **options):
        experiment, target = self.get_experiment(key), self.get_user(user)
        self.require_yes(options, f"would reset {target.username} in {key} to automatic")
        deleted = assignment_reset(experiment=experiment, user=target, actor=None, source=SOURCE)
        if as_json:
            self.emit_json({"experiment_key": key, "user": str(target.pk), "deleted": deleted})
        elif deleted:
            self.stdout.write(f"{target.username} in {key}: back to automatic assignment")
        else:
            self.stdout.write(f"{target.username} had no assignment in {key}; nothing to reset")
