"""The lab: demo data, customer fixtures and simulations. It drives the real deck and outcome
paths, so it sits on top of the stack, in deck (docs/architecture.md)."""
