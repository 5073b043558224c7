"""Acknowledgements from staff: one-click links, the staff API, and the gridwatch.acks topic."""
