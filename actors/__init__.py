"""clipstream.actors."""
