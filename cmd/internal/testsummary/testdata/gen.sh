#!/bin/sh
# Regenerates the go test -json streams the tests read, from the fixture
# module in mod/ (each package is one case), then the expected summaries:
#   cd cmd/internal/testsummary/testdata && ./gen.sh && cd .. && go test -run Golden -update
set -e
cd "$(dirname "$0")/mod"
gotest() { out=$1; shift; ${GO:-go} test -json -count=1 -trimpath "$@" > "../$out" || true; }
gotest mixed.json -shuffle=on ./builderr ./fail ./nofiles ./panic ./pass ./skip
gotest ok.json -shuffle=on ./nofiles ./pass ./skip
gotest crash.json ./crash
gotest timeout.json -timeout 2s ./hang
