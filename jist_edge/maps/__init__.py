"""Place maps: building them from a route (or drives), merging, writing and storing them verified."""
