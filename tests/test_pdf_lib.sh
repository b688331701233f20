#!/bin/bash
# test_pdf_lib.sh — poppler-glib is loaded only when a PDF is read
# (src/ingest/pdf_lib.h): the binary does not link it, a missing library
# fails PDFs with the loader's reason and leaves the rest of the add (and
# the store) intact, and a later add with the library ingests the PDF.
set -u
: "${CAIRN:?}"
TMP="${CAIRN_TEST_TMP:-/tmp}/pdflib.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }
unset CAIRN_DB CAIRN_PDF_LIB

check "! ldd \"\$CAIRN\" | grep -q -e poppler -e libglib"

P="$TMP/proj"; mkdir -p "$P/docs"; cd "$P" || exit 1
# A one-page PDF; poppler rebuilds the missing cross-reference table.
cat > docs/report.pdf <<'PDF'
%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >> endobj
4 0 obj << /Length 58 >> stream
BT /F1 12 Tf 72 720 Td (Quarterly zephyrine findings.) Tj ET
endstream endobj
5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj
trailer << /Root 1 0 R >>
%%EOF
PDF
echo "Plain notes about granite." > docs/notes.txt
"$CAIRN" init >/dev/null 2>&1

out=$(CAIRN_PDF_LIB=/nonexistent/libpoppler-glib.so.8 "$CAIRN" add docs 2>&1); rc=$?
check "[ $rc -eq 1 ]"                                   # a file failed: exit 1, the rest is stored
check "grep -q 'report.pdf' <<<\"\$out\" && grep -q 'PDF support needs /nonexistent/libpoppler-glib.so.8' <<<\"\$out\""
check "\"$CAIRN\" search granite --json | grep -q notes.txt"
check "! \"$CAIRN\" search zephyrine --json | grep -q report.pdf"
check "\"$CAIRN\" status --json | grep -q '\"documents\":[[:space:]]*1'"

out=$("$CAIRN" add docs 2>&1); rc=$?
check "[ $rc -eq 0 ]"
check "\"$CAIRN\" search zephyrine --json | grep -q report.pdf"
check "\"$CAIRN\" status --json | grep -q '\"documents\":[[:space:]]*2'"

echo "$((n-fail))/$n checks passed"
[ $fail -eq 0 ]
