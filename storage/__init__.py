"""clipstream.storage."""
