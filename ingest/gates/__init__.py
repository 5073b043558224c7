"""Gate terminal event sources, one per configured gate, chosen by ``kind``."""
