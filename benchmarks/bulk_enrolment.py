"""Bulk enrolment throughput: photos per second through ``gridwatch registry import``'s job, on real photos.

The source is a folder of ``<person>/<photo>`` (default: the shared ``faces-dev`` set, 25 identities and
218 photos of varied size; ``--source`` for another), imported into a fresh registry the way the command
does it: ``FolderSource`` + ``BulkImport`` with its journal (resumable), each photo decoded, detected,
quality-gated and embedded, checked against the registry for a duplicate, each person's templates sealed
and stored, the enrolment audited.

Baseline, same run, same photos: the photo → embedding step alone (``enrollment_sample``: decode, detect,
gate, embed), nothing searched or stored. ``ratio`` = import photos/s / baseline photos/s: what the
registry's side of an import (duplicate search, sealing, the SQLite transaction, the audit) costs.
The model is loaded and warmed up before either is timed. Without ``GRIDWATCH_DATA_KEY``, a throwaway
key of the run seals the templates (said so).

    .venv/bin/python benchmarks/bulk_enrolment.py [--source DIR]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.loader import load_config
from gridwatch.core.crypto import DATA_KEY_ENV, new_data_key
from gridwatch.wiring import build_recognition, data_paths
from recognition.bulk_import import BulkImport, FolderSource, ImportJournal
from recognition.enroll import EnrollmentError, enrollment_sample

DEFAULT_SOURCE = Path("/work/shared/testdata/faces-dev")


def write_config(root: Path) -> Path:
    config = root / "gridwatch.yaml"
    config.write_text(
        f"""
service:
  data_dir: {root / "data"}
registries:
  - {{name: residents, purpose: bulk enrolment benchmark, legal_basis: benchmark, retention_days: 1}}
"""
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="a folder of <person>/<photo>")
    args = parser.parse_args()
    if not os.environ.get(DATA_KEY_ENV, "").strip():
        os.environ[DATA_KEY_ENV] = base64.b64encode(new_data_key()).decode("ascii")
        print(f"{DATA_KEY_ENV} is not set: templates are sealed with a throwaway key of this run", flush=True)
    source = FolderSource(args.source)
    photos = [photo for row in source.rows() for photo in row.photos]
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_config(write_config(Path(tmp)))
        with AuditLog(data_paths(loaded).audit_log) as audit:
            parts = build_recognition(loaded, audit)
            try:
                parts.analyzer.load()
                parts.registries.load()
                warm = source.read(photos[0])
                for _ in range(3):
                    enrollment_sample(parts.analyzer, parts.gate, warm, what="warm-up")

                started = time.perf_counter()
                for photo in photos:
                    with contextlib.suppress(EnrollmentError):  # refused photos cost their analysis in both runs
                        enrollment_sample(parts.analyzer, parts.gate, source.read(photo), what=photo)
                baseline_s = time.perf_counter() - started

                job = BulkImport(
                    parts.registries,
                    parts.analyzer,
                    parts.gate,
                    "residents",
                    source,
                    actor="benchmark",
                    journal=ImportJournal(Path(tmp) / "data" / "imports" / "benchmark.jsonl"),
                )
                started = time.perf_counter()
                report = job.run()
                import_s = time.perf_counter() - started
            finally:
                parts.close()
    kinds: dict[str, int] = {}
    for refusal in report.refused:
        kinds[refusal.kind] = kinds.get(refusal.kind, 0) + 1
    baseline_rate, import_rate = len(photos) / baseline_s, report.photos / import_s
    print(f"source: {args.source} ({len(source.rows())} persons, {len(photos)} photos)")
    print(f"baseline, photo -> embedding alone:  {baseline_rate:6.2f} photos/s ({baseline_s:.1f} s)")
    print(f"registry import (store, seal, dedup): {import_rate:6.2f} photos/s ({import_s:.1f} s)")
    print(f"enrolled {len(report.enrolled)} persons; refused {len(report.refused)} photo(s): {kinds}")
    print(f"ratio import / baseline: {import_rate / baseline_rate:.2f}")
    result = {
        "benchmark": "bulk_enrolment",
        "persons": len(source.rows()),
        "photos": len(photos),
        "photos_analysed": report.photos,
        "enrolled": len(report.enrolled),
        "refused": kinds,
        "baseline_photos_per_s": round(baseline_rate, 2),
        "photos_per_s": round(import_rate, 2),
        "ratio": round(import_rate / baseline_rate, 3),
        "cores": os.cpu_count(),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
