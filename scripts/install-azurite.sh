#!/usr/bin/env bash
# Install Azurite (Microsoft's Azure Storage emulator) from the npm registry
# into a project-local folder, for the Azure Blob store tests.
#
#   scripts/install-azurite.sh            # into .cache/azurite
#   AZURITE_PREFIX=/opt/azurite scripts/install-azurite.sh
#
# The version is pinned so every machine tests against the same emulator.
# Idempotent: when the pinned version is already there nothing is fetched.
# The tests find the binary at <prefix>/node_modules/.bin/azurite-blob (or
# through AZURITE_BLOB_BIN).
set -euo pipefail

AZURITE_VERSION=3.37.0
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=${AZURITE_PREFIX:-$here/.cache/azurite}
binary="$prefix/node_modules/.bin/azurite-blob"
package_json="$prefix/node_modules/azurite/package.json"

installed_version() {
  [ -f "$package_json" ] || return 1
  node -e 'process.stdout.write(require(process.argv[1]).version)' "$package_json"
}

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "install-azurite: npm and node are needed (Debian/Ubuntu: apt-get install npm);" \
    "Azurite $AZURITE_VERSION was not installed" >&2
  exit 1
fi

if [ -x "$binary" ] && [ "$(installed_version 2>/dev/null || true)" = "$AZURITE_VERSION" ]; then
  exit 0
fi

echo "install-azurite: installing azurite@$AZURITE_VERSION into $prefix"
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error \
  "azurite@$AZURITE_VERSION"

found=$(installed_version || true)
if [ ! -x "$binary" ] || [ "$found" != "$AZURITE_VERSION" ]; then
  echo "install-azurite: npm finished but $binary (version ${found:-none}," \
    "expected $AZURITE_VERSION) is missing; see the npm output above" >&2
  exit 1
fi
echo "install-azurite: azurite $found ready at $binary"
