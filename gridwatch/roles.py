"""Process roles of ``gridwatch run --role``: which stages one process runs.

``all`` is the embedded single process (every stage, any transport, any database). The other roles are
one part of a site that runs several processes joined by Kafka topics and sharing one PostgreSQL
database (DESIGN §1, "Scale-out on existing engines"):

- ``recognition``: cameras, gates and recognition; publishes sightings and stranger attempts to Kafka.
- ``rules``: a member of the ``rules`` consumer group on the sightings and stranger-attempts topics;
  owns the rule state and absence timers of the partitions Kafka assigns it; writes alerts (and their
  cases) to the outbox.
- ``notifier``: delivers the outbox to the sinks, runs the case desk's timers, the staff notifications,
  case events and the acknowledgement consumer.
- ``console``: the operator console's listener.
"""

from __future__ import annotations

import enum

from sqlalchemy import make_url

from gridwatch.core.config.issues import ConfigError
from gridwatch.core.config.loader import LoadedConfig


class Role(enum.StrEnum):
    ALL = "all"
    RECOGNITION = "recognition"
    RULES = "rules"
    NOTIFIER = "notifier"
    CONSOLE = "console"

    def runs(self, part: Role) -> bool:
        """Whether a process of this role runs ``part`` (a role other than ``all``)."""
        return self is Role.ALL or self is part


def check_role(loaded: LoadedConfig, role: Role) -> None:
    """A role other than ``all`` shares its work through Kafka and its records through PostgreSQL:
    raise ``ConfigError`` (file:line, key path, reason) when the config has not got them."""
    if role is Role.ALL:
        return
    config = loaded.config
    issues = []
    if config.service.transport.driver != "kafka":
        issues.append(
            loaded.issue(
                ("service", "transport", "driver"),
                f"--role {role} needs the kafka transport (the stages of other processes are reached through it)",
            )
        )
    url = config.service.database.url
    if not url or make_url(url).get_backend_name() != "postgresql":
        issues.append(
            loaded.issue(
                ("service", "database", "url"),
                f"--role {role} needs a PostgreSQL database shared by every process (rule state, cases, outbox)",
            )
        )
    if issues:
        raise ConfigError(issues)
