"""Warning models over sightings and the clock. Their only action is to notify people."""
