"""clipstream.cli."""
