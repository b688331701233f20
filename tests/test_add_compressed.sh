#!/bin/bash
# test_add_compressed.sh — cairn add of compressed single files (.gz .bz2
# .xz .zst, made here with the system's compressors or python3) and man
# pages under them, end to end: inner format, search, re-add unchanged, a
# decompression bomb skipped with its reason, a damaged file failed.
set -u
: "${CAIRN:?}"
TMP="${CAIRN_TEST_TMP:-/tmp}/add_compressed.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }
unset CAIRN_DB
P="$TMP/proj"
mkdir -p "$P/docs" "$P/man/man1"
cd "$P" || exit 1
"$CAIRN" init >/dev/null 2>&1 || { echo "init failed"; exit 1; }

printf '# Pumps\n\nThe impeller of the bilge pump needs cleaning.\n' > docs/pumps.md
printf 'Sourdough starter needs feeding every day.\n' > docs/bread.txt
printf '{"_id":"r1","text":"zebra crossing rules"}\n{"_id":"r2","text":"giraffe necks"}\n' > docs/corpus.jsonl
printf 'Lorem ipsum of the octopus garden.\n' > docs/octopus.txt
cat > man/man1/frob.1 <<'EOF'
.TH FROB 1
.SH NAME
frob \- frobnicate widgets
.SH OPTIONS
.TP
.B \-x
Exchange the flux capacitor.
EOF
python3 - <<'EOF' || exit 1
import gzip, bz2, lzma, shutil, os
def z(path, mod, suf):
    with open(path, 'rb') as f, mod.open(path + suf, 'wb') as g:
        shutil.copyfileobj(f, g)
    os.remove(path)
z('docs/pumps.md', gzip, '.gz')
z('docs/bread.txt', bz2, '.bz2')
z('docs/corpus.jsonl', lzma, '.xz')
z('man/man1/frob.1', gzip, '.gz')
# a bomb: 80 MB of one byte in ~80 KB
with gzip.open('docs/bomb.txt.gz', 'wb') as g:
    for _ in range(80):
        g.write(b'a' * (1 << 20))
# a damaged file: gzip header and noise
os.makedirs('bad', exist_ok=True)
open('bad/broken.txt.gz', 'wb').write(b'\x1f\x8b\x08' + bytes(range(256)) * 4)
EOF
if command -v zstd >/dev/null; then zstd -q --rm docs/octopus.txt; else rm docs/octopus.txt; fi

out=$("$CAIRN" add docs man 2>&1); rc=$?
echo "$out" | sed 's/^/  | /'
check "[ $rc -eq 0 ]"
check "grep -q 'added.*pumps.md.gz' <<<\"\$out\""
check "grep -q 'added.*bread.txt.bz2' <<<\"\$out\""
check "grep -q 'added.*corpus.jsonl.xz (2 chunks)' <<<\"\$out\""
check "grep -q 'added.*frob.1.gz' <<<\"\$out\""
check "grep -q 'skipped: docs/bomb.txt.gz: decompression bomb refused' <<<\"\$out\""
out=$("$CAIRN" add bad 2>&1); rc=$?
check "[ $rc -ne 0 ] && grep -q 'failed: bad/broken.txt.gz: .*damaged gzip data' <<<\"\$out\""

s=$("$CAIRN" search impeller 2>&1)
check "grep -q 'pumps.md.gz' <<<\"\$s\""
check "grep -q 'Pumps' <<<\"\$s\""                         # the heading survived: Markdown inside
s=$("$CAIRN" search sourdough 2>&1); check "grep -q 'bread.txt.bz2' <<<\"\$s\""
s=$("$CAIRN" search --json giraffe 2>&1); check "grep -q 'corpus.jsonl.xz' <<<\"\$s\""
s=$("$CAIRN" search flux capacitor 2>&1)
check "grep -q 'frob.1.gz' <<<\"\$s\" && grep -q 'OPTIONS' <<<\"\$s\""   # man section as heading
if [ -f docs/octopus.txt.zst ]; then
  s=$("$CAIRN" search octopus 2>&1); check "grep -q 'octopus.txt.zst' <<<\"\$s\""
fi
s=$("$CAIRN" search --json --where 'compression = "bzip2"' sourdough 2>&1)
check "grep -q 'bread.txt.bz2' <<<\"\$s\""

# re-add: nothing changes; the bomb stays skipped without being read again
out=$("$CAIRN" add docs man 2>&1)
check "grep -q '0 added, 0 updated' <<<\"\$out\""
check "grep -q 'bomb.txt.gz: skipped before' <<<\"\$out\""

# a changed compressed file is re-read
python3 -c "
import gzip
with gzip.open('docs/pumps.md.gz','wb') as g: g.write(b'# Pumps\n\nThe propeller shaft seal leaks.\n')"
out=$("$CAIRN" add docs 2>&1)
check "grep -q 'updated.*pumps.md.gz' <<<\"\$out\""
s=$("$CAIRN" search propeller 2>&1); check "grep -q 'pumps.md.gz' <<<\"\$s\""

echo "$n checks, $fail failures"
[ $fail -eq 0 ]
