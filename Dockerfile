# The clipstream processes (api, node, worker) for compose.yaml.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/clipstream
COPY . .
RUN pip install --no-cache-dir .
ENV PYTHONSAFEPATH=1
USER nobody
