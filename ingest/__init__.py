"""Ingest: camera workers (RTSP / file sources) that deliver sampled frames to recognition."""
