"""`gridwatch rules simulate`: a rule set run over made-up or recorded events on a virtual clock.

``inputs`` reads and checks the entries and events files against the config; ``run`` drives the
service's own rule engine over them and yields the alerts it makes.
"""

from __future__ import annotations

from gridwatch.simulate.inputs import (
    InputProblem,
    SimulationInput,
    SimulationInputError,
    read_acks,
    read_inputs,
    utc_instant,
)
from gridwatch.simulate.run import alert_record, simulate

__all__ = [
    "InputProblem",
    "SimulationInput",
    "SimulationInputError",
    "alert_record",
    "read_acks",
    "read_inputs",
    "simulate",
    "utc_instant",
]
