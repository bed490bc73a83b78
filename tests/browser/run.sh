#!/usr/bin/env bash
# Runs the browser tests of the web apps against the real cloudlaw binary.
#
# Installs what is missing (Chromium, Firefox ESR, coturn, poppler and fonts through apt-get as root, the
# npm packages through npm ci), then runs every *.test.mjs with Node's test
# runner. The binary is $CLOUDLAW_BIN, by default target/debug/cloudlaw
# (build it first: cargo build -p signaling -p media-relay), and the relay node
# $MEDIA_RELAY_BIN, by default beside it. Screenshots go to artifacts/.
# Usage: tests/browser/run.sh [test files...]
set -euo pipefail
cd "$(dirname "$0")"

missing=()
[[ -x ${CHROMIUM_BIN:-/usr/bin/chromium} ]] || missing+=(chromium)
# Firefox ESR for the lawyer's console and the kiosk's referral screens in a second browser
# (firefox.test.mjs, firefox-referral.test.mjs), and poppler's pdfinfo to count a printed slip's pages.
[[ -x ${FIREFOX_BIN:-/usr/bin/firefox-esr} ]] || missing+=(firefox-esr)
command -v pdfinfo >/dev/null 2>&1 || missing+=(poppler-utils)
# coturn for the TURN (UDP-blocked network) test; ip for the network-blink test.
[[ -x /usr/bin/turnserver ]] || missing+=(coturn)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# A real SIP phone for the hotline tests (phone.test.mjs), and sox to measure what it heard.
command -v baresip >/dev/null 2>&1 || missing+=(baresip-core)
command -v sox >/dev/null 2>&1 || missing+=(sox)
# Fonts for Chinese and Tibetan, so that screenshots show real text.
for pkg in fonts-noto-core fonts-noto-cjk; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "tests/browser/run.sh: missing system packages: ${missing[*]} (install them, or run as root)" >&2
    exit 1
  fi
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci when a package the lock names is missing or at another version.
if ! node -e 'const l=require("./package-lock.json");for(const n of ["playwright-core","puppeteer-core"]){const i=require("./node_modules/"+n+"/package.json");if(l.packages["node_modules/"+n].version!==i.version)process.exit(1)}' 2>/dev/null; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi

bin=${CLOUDLAW_BIN:-../../target/debug/cloudlaw}
if [[ ! -x $bin ]]; then
  echo "tests/browser/run.sh: no cloudlaw binary at $bin (run: cargo build -p signaling, or set CLOUDLAW_BIN)" >&2
  exit 1
fi
export CLOUDLAW_BIN
CLOUDLAW_BIN=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
# The standalone relay node, for the relay failover test ($MEDIA_RELAY_BIN,
# by default next to cloudlaw; cargo test --workspace builds both).
relay_bin=${MEDIA_RELAY_BIN:-$(dirname "$CLOUDLAW_BIN")/media-relay}
if [[ ! -x $relay_bin ]]; then
  echo "tests/browser/run.sh: no media-relay binary at $relay_bin (run: cargo build -p media-relay, or set MEDIA_RELAY_BIN)" >&2
  exit 1
fi
export MEDIA_RELAY_BIN
MEDIA_RELAY_BIN=$(cd "$(dirname "$relay_bin")" && pwd)/$(basename "$relay_bin")

if (($#)); then files=("$@"); else files=(./*.test.mjs); fi
# One file at a time: each starts its own server and browser, and the machine has 2 cores.
exec node --test --test-concurrency=1 "${files[@]}"
