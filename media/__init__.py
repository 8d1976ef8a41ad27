"""clipstream.media."""
