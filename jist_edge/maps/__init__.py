"""Place maps: building them from a route, storing and verifying them, positions, and recall evaluation."""
