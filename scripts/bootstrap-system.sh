#!/usr/bin/env bash
# Install the system packages the project needs on Debian/Ubuntu, only if
# missing: a Python >= 3.11 with venv and headers, a C compiler for packages
# that build from source, Mosquitto and PostgreSQL (real servers the tests
# start on loopback ephemeral ports) and npm (for Azurite). Runs apt-get only
# when something is absent.
set -euo pipefail

python=${PYTHON:-python3}
missing=()

if ! command -v "$python" >/dev/null 2>&1; then
  missing+=(python3 python3-venv python3-dev)
elif ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bootstrap: $python is $("$python" --version 2>&1); Python >= 3.11 is needed" >&2
  exit 1
else
  "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
fi
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
# The MQTT tests run a real broker; /usr/sbin is not always on a user's PATH.
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
# The catalog tests run their own PostgreSQL server (initdb into a temp dir).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# Azurite (the Azure Blob tests' emulator) comes from the npm registry.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: please install ${missing[*]} (no apt-get on this machine)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "bootstrap: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
