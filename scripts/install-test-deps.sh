#!/usr/bin/env bash
# Installs what the tests need beyond Go: Debian's prometheus package (a real remote-write client).
set -euo pipefail
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
prometheus --version | head -1
