# The two commands of the README: `make demo` and `make test`.
# Each creates/updates .venv, installs what it needs, then runs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_ARGS ?=
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages of the RTSP test server (GStreamer's RTSP server through python3-gi), the MQTT broker,
# and kcat (a librdkafka client the Kafka tests read topics with).
TEST_DEBS := ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
	gstreamer1.0-libav gstreamer1.0-rtsp gstreamer1.0-tools mosquitto kcat
# Apache Kafka for the tests runs on Java 17 and is fetched with Maven (tests/support/kafka.py).
KAFKA_DEBS := openjdk-17-jre-headless maven
# The console's browser tests: Playwright drives Debian's Chromium.
BROWSER_DEBS := chromium fonts-wqy-microhei

.PHONY: demo test lint install install-test system-test-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# insightface 2.1 hard-depends on the GUI build of OpenCV, which clobbers the headless one:
# install it without dependencies; pyproject.toml lists what it needs. So do roboflow's trackers
# (ByteTrack) and supervision (which also declares PyAV).
NODEPS := "insightface==2.1" "trackers==2.6.1" "supervision==0.31.2"
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-deps $(NODEPS)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-deps $(NODEPS)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

system-test-deps:
	@if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer" 2>/dev/null \
	   || ! command -v gst-inspect-1.0 >/dev/null || ! gst-inspect-1.0 x264enc >/dev/null 2>&1 \
	   || ! command -v mosquitto >/dev/null || ! command -v kcat >/dev/null; then \
		echo "installing Debian packages for the test servers"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(TEST_DEBS); \
	fi
	@$(BIN)/python tests/support/mosquitto.py ensure
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
		echo "installing Java 17 and Maven for the Kafka test broker"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(KAFKA_DEBS); \
	fi
	@$(BIN)/python tests/support/kafka.py fetch
	@# PostgreSQL for the database tests: tests/support/postgres.py runs a throwaway cluster from these binaries.
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		echo "installing Debian postgresql for the database tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postgresql; \
	fi
	@# The console's browser tests drive Debian's Chromium through Playwright (tests/support/browser.py), never a downloaded browser.
	@# With its recommended packages (its fonts), plus a CJK font so the Chinese labels in the screenshots are legible.
	@if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then \
		echo "installing Debian chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(BROWSER_DEBS); \
	fi

demo: $(VENV)/.installed-run
	$(BIN)/gridwatch demo $(DEMO_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(VENV)/.installed-test system-test-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
