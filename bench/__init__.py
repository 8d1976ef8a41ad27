"""The HTTP benchmark suite (`clipstream bench`): corpus seeding, wrk scenarios, reference servers."""
