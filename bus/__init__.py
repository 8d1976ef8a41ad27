"""clipstream.bus."""
