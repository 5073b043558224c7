"""Signed acknowledgement links and staff tokens (pure), and their single use on both backends."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from notifier.ack_links import (
    MAX_TOKEN_CHARS,
    AckLinks,
    LinkClaims,
    LinkExpiredError,
    LinkInvalidError,
    UsedLinks,
    token_digest,
)
from tests.support.db import Databases

SECRET = "a-test-signing-secret-of-32-chars!"
NOW = 1_800_000_000.0


@pytest.fixture
def links() -> AckLinks:
    return AckLinks(SECRET, ttl_s=3600, base_url="https://gw.example.org/")


def _token(url: str) -> str:
    prefix = "https://gw.example.org/a/"
    assert url.startswith(prefix)
    return url[len(prefix) :]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip(links: AckLinks) -> None:
    token = _token(links.issue("alert-1", "wang", NOW))
    assert "/" not in token
    assert "=" not in token
    claims = links.verify(token, NOW + 10)
    assert (claims.alert_id, claims.staff_id, claims.expires_at) == ("alert-1", "wang", NOW + 3600)
    assert len(base64.urlsafe_b64decode(claims.link_id + "==")) == 12  # 96 random bits


def test_each_issue_is_its_own_link(links: AckLinks) -> None:
    first, second = (links.verify(_token(links.issue("alert-1", "wang", NOW)), NOW) for _ in range(2))
    assert first.link_id != second.link_id


def test_other_staff_gets_another_token_for_the_same_alert(links: AckLinks) -> None:
    wang = _token(links.issue("alert-1", "wang", NOW))
    li = _token(links.issue("alert-1", "li", NOW))
    assert wang != li
    assert links.verify(li, NOW).staff_id == "li"
    # Li's signature does not carry over to a payload naming Wang.
    wang_body, li_mac = wang.partition(".")[0], li.partition(".")[2]
    with pytest.raises(LinkInvalidError):
        links.verify(f"{wang_body}.{li_mac}", NOW)


def test_forged_signature_is_invalid(links: AckLinks) -> None:
    token = _token(links.issue("alert-1", "wang", NOW))
    body, _, mac = token.partition(".")
    flipped = _b64(bytes([base64.urlsafe_b64decode(mac + "=")[0] ^ 1]) + base64.urlsafe_b64decode(mac + "=")[1:])
    with pytest.raises(LinkInvalidError):
        links.verify(f"{body}.{flipped}", NOW)
    other_key = AckLinks("another-secret-of-enough-length", ttl_s=3600, base_url="https://gw.example.org")
    with pytest.raises(LinkInvalidError):
        other_key.verify(token, NOW)


def test_tampered_payload_is_invalid(links: AckLinks) -> None:
    token = _token(links.issue("alert-1", "wang", NOW))
    body, _, mac = token.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    for change in ({1: "li"}, {0: "alert-2"}, {2: payload[2] + 86400}):
        forged = list(payload)
        for index, value in change.items():
            forged[index] = value
        forged_body = _b64(json.dumps(forged, separators=(",", ":")).encode())
        with pytest.raises(LinkInvalidError):
            links.verify(f"{forged_body}.{mac}", NOW)


@pytest.mark.parametrize(
    "token", ["", "nodot", ".", "abc.", ".abc", "a.b.c", "é.é", "!!!.???", "eyJ4Ijox.AAAA", "x" * 40 + "." + "y" * 43]
)
def test_malformed_tokens_are_invalid(links: AckLinks, token: str) -> None:
    with pytest.raises(LinkInvalidError):
        links.verify(token, NOW)


def test_a_signed_payload_of_the_wrong_shape_is_invalid(links: AckLinks) -> None:
    # Only someone with the key could make these; still, they are refused rather than half-trusted.
    for payload in (b"{}", b"[1,2,3,4]", b'["a","b",true,"c"]', b'["a","b",1.5,"c"]', b"not json"):
        body = _b64(payload)
        token = f"{body}.{_b64(links._link_mac(body))}"
        with pytest.raises(LinkInvalidError):
            links.verify(token, NOW)


def test_expiry(links: AckLinks) -> None:
    token = _token(links.issue("alert-1", "wang", NOW))
    links.verify(token, NOW + 3599)
    with pytest.raises(LinkExpiredError) as expired:
        links.verify(token, NOW + 3600)
    assert expired.value.status == 410
    assert expired.value.claims is not None
    assert (expired.value.claims.alert_id, expired.value.claims.staff_id) == ("alert-1", "wang")


def test_over_long_token_is_refused_before_any_work(links: AckLinks, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_mac(body: str) -> bytes:
        raise AssertionError("an over-long token must not be hashed")

    monkeypatch.setattr(links, "_link_mac", no_mac)
    with pytest.raises(LinkInvalidError):
        links.verify("a" * (MAX_TOKEN_CHARS + 1), NOW)


def test_link_and_staff_macs_are_domain_separated(links: AckLinks) -> None:
    token = links.staff_token("wang")
    assert links.staff_of_token(token) == "wang"
    # A link's MAC over a body never equals a staff MAC over the same text: separate prefixes.
    assert _b64(links._link_mac("wang"))[:43] != token[-43:]


def test_staff_tokens(links: AckLinks) -> None:
    token = links.staff_token("wang.li-2")
    assert token.startswith("gws_wang.li-2_")
    assert len(token) == len("gws_wang.li-2_") + 43
    assert links.staff_of_token(token) == "wang.li-2"
    assert links.staff_of_token(links.staff_token("li")) == "li"
    assert links.staff_token("wang") != links.staff_token("li")
    other_key = AckLinks("another-secret-of-enough-length", ttl_s=60, base_url="")
    assert other_key.staff_of_token(token) is None
    mac = token[-43:]
    assert links.staff_of_token(f"gws_li_{mac}") is None  # Wang's MAC under Li's id
    for bad in ("", "gws_", "gws__" + mac, token[:-1], token + "x", "Bearer " + token, "gws_wang", "x" * 5000):
        assert links.staff_of_token(bad) is None


def test_token_digest_is_short_and_not_the_token(links: AckLinks) -> None:
    token = _token(links.issue("alert-1", "wang", NOW))
    digest = token_digest(token)
    assert len(digest) == 12
    assert digest not in token
    assert SECRET not in repr(links)


# --- single use, on SQLite and PostgreSQL ------------------------------------------------------------


def test_a_link_is_used_once(databases: Databases, links: AckLinks) -> None:
    used = UsedLinks(databases())
    first = links.verify(_token(links.issue("alert-1", "wang", NOW)), NOW)
    second = links.verify(_token(links.issue("alert-1", "wang", NOW)), NOW)
    assert used.use(first, NOW) is True
    assert used.use(first, NOW + 1) is False
    assert used.use(second, NOW + 2) is True  # another notification's link for the same alert and person
    # Seen from another process too.
    assert UsedLinks(databases()).use(first, NOW + 3) is False


def test_release_undoes_only_that_use(databases: Databases, links: AckLinks) -> None:
    used = UsedLinks(databases())
    claims = links.verify(_token(links.issue("alert-1", "wang", NOW)), NOW)
    assert used.use(claims, NOW) is True
    assert used.release(claims, NOW + 5) is False  # not this use
    assert used.use(claims, NOW + 6) is False
    assert used.release(claims, NOW) is True
    assert used.use(claims, NOW + 7) is True


def test_concurrent_uses_one_wins(databases: Databases, links: AckLinks) -> None:
    claims = links.verify(_token(links.issue("alert-1", "wang", NOW)), NOW)
    stores = [UsedLinks(databases()) for _ in range(6)]
    start = threading.Barrier(len(stores))
    results: list[bool] = []

    def use(store: UsedLinks, n: int) -> None:
        start.wait()
        results.append(store.use(claims, NOW + n))

    threads = [threading.Thread(target=use, args=(store, n)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]


def test_forget_expired(databases: Databases, links: AckLinks) -> None:
    used = UsedLinks(databases())
    old = LinkClaims("alert-1", "wang", "old-link", expires_at=NOW - 1)
    edge = LinkClaims("alert-1", "wang", "edge-link", expires_at=NOW)
    fresh = links.verify(_token(links.issue("alert-1", "wang", NOW)), NOW)
    for claims in (old, edge, fresh):
        assert used.use(claims, NOW - 100)
    assert used.forget_expired(NOW) == 2  # expires_at <= now: verify refuses those links already
    assert used.forget_expired(NOW) == 0
    assert used.use(fresh, NOW) is False
