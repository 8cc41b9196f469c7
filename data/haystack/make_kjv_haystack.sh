#!/usr/bin/env bash
# Regenerates kjv_narrative.txt: the narrative books of the King James Version (1611, public domain),
# from Debian's bible-kjv-text package (read with its `bible` program, package bible-kjv).
# One paragraph per chapter, verse numbers dropped. Run once by hand; the eval reads the committed file.
set -euo pipefail
command -v bible >/dev/null || { echo "install Debian packages bible-kjv and bible-kjv-text" >&2; exit 1; }
out="$(dirname "$0")/kjv_narrative.txt"
# book name and chapter count
books="Genesis:50 Exodus:40 Joshua:24 Judges:21 Ruth:4 1Samuel:31 2Samuel:24 1Kings:22 2Kings:25 Esther:10 Daniel:6 Jonah:4 Nehemiah:13 Ezra:10"
: > "$out.tmp"
for entry in $books; do
  book=${entry%%:*}; chapters=${entry##*:}
  for ((c = 1; c <= chapters; ++c)); do
    bible -l100000 "${book}${c}:1-200" | awk 'NR > 2 && NF { sub(/^ *[0-9]+ /, ""); printf "%s%s", sep, $0; sep = " " } END { print "" }' >> "$out.tmp"
  done
done
mv "$out.tmp" "$out"
