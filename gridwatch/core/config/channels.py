"""`channels:` section: how notifications reach staff. Each entry has an ``id`` (staff list the ids) and a ``type``.

- ``kafka``: one record per recipient per alert on ``topic`` (default ``gridwatch.notifications``), key =
  staff id, CloudEvents headers: the push path a mobile gateway consumes. Connects with ``notifier.kafka``'s
  connection settings.
- ``webhook``: an HTTP POST of the notification JSON, signed with HMAC-SHA256 over ``<timestamp>.<body>``
  (headers ``X-Gridwatch-Timestamp`` and ``X-Gridwatch-Signature: sha256=<hex>``).
- ``wecom``: a WeCom (企业微信) group robot: markdown with the one-click acknowledgement link.
- ``dingtalk``: a DingTalk (钉钉) group robot: markdown with the link; with ``signing_secret`` the URL is
  signed as DingTalk specifies (``timestamp`` and ``sign`` query parameters).
- ``console``: the operator console's live feed (and the service log).

URLs and secrets come only from the environment (``${ENV}``): the loader refuses literal values.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gridwatch.core.config.base import Identifier, StrictModel


class _ChannelBase(StrictModel):
    id: Identifier = Field(description="Channel id, listed by staff entries.")


class KafkaChannelConfig(_ChannelBase):
    type: Literal["kafka"] = Field(description="Kafka topic read by a push gateway.")
    topic: str = Field(
        default="gridwatch.notifications",
        min_length=1,
        max_length=249,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Topic; one record per recipient per alert, keyed by staff id.",
    )


class _HttpChannelBase(_ChannelBase):
    # No URL pattern here: `config check` stands in for unset variables, and the value is a secret anyway.
    url: str = Field(min_length=8, max_length=2000, description="Endpoint URL (http/https): a ${ENV} placeholder.")
    timeout_s: float = Field(default=5.0, gt=0.0, le=60.0, description="Per-request timeout.")


class WebhookChannelConfig(_HttpChannelBase):
    type: Literal["webhook"] = Field(description="Signed JSON POST to an HTTP endpoint.")
    signing_secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=512,
        repr=False,
        description="HMAC-SHA256 key of the X-Gridwatch-Signature header: a ${ENV} placeholder. Unset: unsigned.",
    )


class WecomChannelConfig(_HttpChannelBase):
    type: Literal["wecom"] = Field(description="WeCom group robot (markdown message).")


class DingtalkChannelConfig(_HttpChannelBase):
    type: Literal["dingtalk"] = Field(description="DingTalk group robot (markdown message).")
    signing_secret: str | None = Field(
        default=None,
        min_length=8,
        max_length=512,
        repr=False,
        description="The robot's 加签 secret (SEC...): a ${ENV} placeholder. Unset: the robot is not signed.",
    )


class ConsoleChannelConfig(_ChannelBase):
    type: Literal["console"] = Field(description="The operator console's live feed and the service log.")


ChannelConfig = Annotated[
    KafkaChannelConfig | WebhookChannelConfig | WecomChannelConfig | DingtalkChannelConfig | ConsoleChannelConfig,
    Field(discriminator="type"),
]
