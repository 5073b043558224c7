# gridwatch service image (used by docker-compose.yml on production hosts).
FROM python:3.11-slim-bookworm

# No recommends: headless OpenCV needs only these shared libraries.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libglib2.0-0 libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gridwatch ./gridwatch
COPY ingest ./ingest
COPY recognition ./recognition
COPY rules ./rules
COPY notifier ./notifier
# insightface 2.1 hard-depends on the GUI OpenCV build; install it without dependencies
# (pyproject.toml lists what it needs, with opencv-python-headless).
RUN pip install --no-cache-dir --no-deps "insightface==2.1" "trackers==2.6.1" "supervision==0.31.2" \
 && pip install --no-cache-dir . \
 && useradd --system --home /var/lib/gridwatch gridwatch \
 && mkdir -p /var/lib/gridwatch && chown gridwatch /var/lib/gridwatch

USER gridwatch
ENV GRIDWATCH_CONFIG=/etc/gridwatch
EXPOSE 8080
ENTRYPOINT ["gridwatch"]
CMD ["run"]
