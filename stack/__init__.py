"""clipstream.stack."""
