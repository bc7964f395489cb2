#!/usr/bin/env bash
# Refresh the browser libraries `afos serve` ships (no page of afos loads anything from a CDN):
# uPlot (charts) and KaTeX (mathematics), at the versions below, from the npm registry, each with its licence.
# Usage: bash scripts/vendor-web-assets.sh   (needs npm; writes afos/app/static/vendor/)
set -euo pipefail
UPLOT=1.6.32
KATEX=0.19.1
cd "$(dirname "$0")/.."
dest=afos/app/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$UPLOT" "katex@$KATEX" >/dev/null)
mkdir -p "$work/uplot" "$work/katex"
tar xzf "$work/uplot-$UPLOT.tgz" -C "$work/uplot"
tar xzf "$work/katex-$KATEX.tgz" -C "$work/katex"
rm -rf "$dest" && mkdir -p "$dest/uplot" "$dest/katex/fonts"
cp "$work/uplot/package/dist/uPlot.iife.min.js" "$work/uplot/package/dist/uPlot.min.css" \
   "$work/uplot/package/LICENSE" "$dest/uplot/"
cp "$work/katex/package/dist/katex.min.js" "$work/katex/package/dist/katex.min.css" \
   "$work/katex/package/LICENSE" "$dest/katex/"
# woff2 only: every browser that runs the pages reads it, so the CSS's woff/ttf fallbacks are never fetched.
cp "$work/katex/package/dist/fonts/"*.woff2 "$dest/katex/fonts/"
printf 'uPlot %s (MIT), KaTeX %s (MIT), from the npm registry by scripts/vendor-web-assets.sh\n' \
  "$UPLOT" "$KATEX" > "$dest/VERSIONS"
du -sh "$dest"
