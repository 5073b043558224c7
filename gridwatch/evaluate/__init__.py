"""`gridwatch eval` and `gridwatch calibrate`: recognition accuracy measured on labelled data, and
registry thresholds set from that evidence (NIST FRTE terms: FNIR at a fixed FPIR)."""
