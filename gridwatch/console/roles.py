"""The console's roles (light: the CLI's parser imports this on every command)."""

from __future__ import annotations

# admin: users · integrator: sources, rules, routing (read-only) and health · operator: alerts of their
# grids · registrar: persons of their registries · auditor: the audit log · staff: their own notifications.
ROLES = ("admin", "integrator", "operator", "registrar", "auditor", "staff")
