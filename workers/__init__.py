"""Background services on the bus: media processing and follower fan-out."""
