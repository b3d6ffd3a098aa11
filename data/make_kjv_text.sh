#!/bin/sh
# Rebuilds data/kjv/genesis-exodus.txt, the text char_rnn trains on by default: the books of
# Genesis and Exodus of the King James Version (1611, public domain), from Debian's packages
# bible-kjv-text (the text, in the Bible Retrieval System's compressed format) and bible-kjv (the
# `bible` program that reads it). Nothing is installed: both packages are downloaded with
# `apt-get download` into a temporary directory and unpacked there with `dpkg-deb -x`.
#
#   sh data/make_kjv_text.sh            # rewrite data/kjv/genesis-exodus.txt
#   sh data/make_kjv_text.sh --check    # rebuild into a temporary file, compare byte for byte
#
# Format: each book's title on its own line, a blank line, then one verse per line as
# "chapter:verse text" (the layout of Project Gutenberg's KJV), a blank line between the books.
# The program's output is plain ASCII; the script checks that.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/kjv/genesis-exodus.txt"
check=0
[ "${1:-}" = "--check" ] && check=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download bible-kjv-text=4.38 bible-kjv=4.38 >/dev/null 2>&1) ||
  (cd "$tmp" && apt-get download bible-kjv-text bible-kjv >/dev/null)
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
bible() { "$tmp/root/usr/bin/bible" -p "$tmp/root/usr/lib" -f "$@"; }

{
  printf 'The First Book of Moses: Called Genesis\n\n'
  bible gen1:1-50:26 | sed -e 's/^Ge\([0-9]*:[0-9]*\) /\1 /'
  printf '\nThe Second Book of Moses: Called Exodus\n\n'
  bible exo1:1-40:38 | sed -e 's/^Exo\([0-9]*:[0-9]*\) /\1 /'
} >"$tmp/text.txt"

if LC_ALL=C grep -q '[^ -~]' "$tmp/text.txt"; then
  echo "make_kjv_text.sh: the text holds a byte outside printable ASCII" >&2
  exit 1
fi
# Every verse line must have lost its book prefix.
if grep -q '^[A-Z][a-z]*[0-9]' "$tmp/text.txt"; then
  echo "make_kjv_text.sh: a verse reference was not stripped" >&2
  exit 1
fi

if [ "$check" = 1 ]; then
  if cmp -s "$tmp/text.txt" "$out"; then
    echo "data/kjv/genesis-exodus.txt: identical"
  else
    echo "data/kjv/genesis-exodus.txt differs from a rebuild" >&2
    exit 1
  fi
else
  mkdir -p "$here/kjv"
  cp "$tmp/text.txt" "$out"
  echo "wrote data/kjv/genesis-exodus.txt ($(wc -c <"$out") bytes)"
fi
