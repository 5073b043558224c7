"""`gridwatch duty who`: who is on duty for a grid at an instant."""
