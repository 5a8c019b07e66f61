"""The route filter: an algorithm over arrays (place positions, distances, statistics) -> an estimate."""
