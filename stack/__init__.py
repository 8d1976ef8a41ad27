"""clipstream.stack: the local service stack behind `clipstream stack up|down|status`.

Modules: ``pins`` (every version and fixed port), ``proc`` (spawn/recognise/stop our processes),
``base`` (the Service cycle shared by all), ``installers`` (apt, go install, Maven), one module per
service (``redis_service``, ``nats_service``, ``cassandra_service``, ``minio_service``, ``apt_tools``
(ffmpeg, chromium)), ``runner`` (parallel installs, ordered starts) and ``cli`` (the click group). Config templates are
in ``files/``.
"""
