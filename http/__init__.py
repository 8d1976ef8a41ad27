"""clipstream.http."""
