"""Reading gridwatch's Prometheus metrics in tests: from a live ``/metrics`` or the process's registry.

The registry is process-global (every test of the session moves the same counters), so tests
compare values before and after what they do, never absolute values::

    before = sample("gridwatch_frames_in_total", camera="cam1")
    ...
    assert sample("gridwatch_frames_in_total", camera="cam1") > before

    first = await scrape_async(f"{base}/metrics")
    ...
    second = await scrape_async(f"{base}/metrics")
    assert value(second, "gridwatch_sightings_total", registry="watch", source_kind="camera") > value(first, ...)

Sample names are the exposed ones: a counter ``gridwatch_x`` is sampled as ``gridwatch_x_total``,
a histogram as ``gridwatch_x_count``, ``gridwatch_x_sum`` and ``gridwatch_x_bucket`` (label ``le``).
"""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Scrape = dict[tuple[str, Labels], float]


def key(name: str, **labels: str) -> tuple[str, Labels]:
    """The key of one sample in a ``scrape()`` result."""
    return name, tuple(sorted(labels.items()))


def parse(text: str) -> Scrape:
    """Every sample of an exposition text, by (sample name, sorted labels)."""
    return {
        key(sample.name, **sample.labels): float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def families(text: str) -> set[str]:
    """The metric family names of an exposition text (counters without ``_total``)."""
    return {family.name for family in text_string_to_metric_families(text)}


def scrape(url: str, timeout_s: float = 10.0) -> Scrape:
    """GET ``url`` (a ``/metrics`` endpoint) and parse it. Blocking: from async code, use ``scrape_async``
    (a server in the test's own event loop cannot answer while the loop is blocked)."""
    response = httpx.get(url, timeout=timeout_s)
    response.raise_for_status()
    return parse(response.text)


async def scrape_async(url: str, timeout_s: float = 10.0) -> Scrape:
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.get(url)
    response.raise_for_status()
    return parse(response.text)


def value(scraped: Scrape, name: str, **labels: str) -> float:
    """One sample of a scrape; 0 when absent (a labelled series appears at its first increment)."""
    return scraped.get(key(name, **labels), 0.0)


def sample(name: str, **labels: str) -> float:
    """One sample of this process's default registry; 0 when the series does not exist yet."""
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else float(found)
