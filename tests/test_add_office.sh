#!/bin/bash
# test_add_office.sh — cairn add of office documents and e-books end to end:
# a .docx, .pptx, .xlsx, .odt and .epub written here with python3's zipfile
# (no binary fixtures), an .rtf; then search finds their text, headings and
# slide pages; a zip bomb and an XXE document are refused with reasons.
set -u
: "${CAIRN:?}"
TMP="${CAIRN_TEST_TMP:-/tmp}/add_office.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }
unset CAIRN_DB
P="$TMP/proj"
mkdir -p "$P/docs" "$P/bad"
cd "$P" || exit 1
"$CAIRN" init >/dev/null 2>&1 || { echo "init failed"; exit 1; }

python3 - <<'EOF' || exit 1
import zipfile
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
def z(path, parts, first_stored=None):
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as f:
        if first_stored:
            f.writestr(zipfile.ZipInfo(first_stored[0]), first_stored[1], compress_type=zipfile.ZIP_STORED)
        for name, data in parts:
            f.writestr(name, data)
z('docs/report.docx', [
  ('word/document.xml', f'<w:document {W}><w:body>'
     '<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Quarterly findings</w:t></w:r></w:p>'
     '<w:p><w:r><w:t>The anemometer readings drifted in March.</w:t></w:r></w:p></w:body></w:document>'),
  ('docProps/core.xml', '<cp:coreProperties xmlns:cp="x" xmlns:dc="http://purl.org/dc/elements/1.1/">'
     '<dc:title>Q1 Report</dc:title><dc:creator>Dana</dc:creator></cp:coreProperties>')])
P = 'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
def sld(t, b):
    return (f'<p:sld {P}><p:cSld><p:spTree><p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr>'
            f'<p:txBody><a:p><a:r><a:t>{t}</a:t></a:r></a:p></p:txBody></p:sp><p:sp><p:txBody><a:p><a:r><a:t>{b}</a:t></a:r></a:p>'
            '</p:txBody></p:sp></p:spTree></p:cSld></p:sld>')
z('docs/deck.pptx', [('ppt/presentation.xml', f'<p:presentation {P}/>'),
  ('ppt/slides/slide1.xml', sld('Intro', 'hello there')), ('ppt/slides/slide2.xml', sld('Budget', 'the flamingo budget doubled'))])
S = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
z('docs/inventory.xlsx', [
  ('xl/workbook.xml', f'<workbook {S}><sheets><sheet name="Tools" r:id="rId1"/></sheets></workbook>'),
  ('xl/_rels/workbook.xml.rels', '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
     '<Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>'),
  ('xl/worksheets/sheet1.xml', f'<worksheet {S}><sheetData><row><c t="inlineStr"><is><t>tool</t></is></c><c t="inlineStr"><is><t>count</t></is></c></row>'
     '<row><c t="inlineStr"><is><t>torque wrench</t></is></c><c><v>3</v></c></row></sheetData></worksheet>')])
O = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
     'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')
z('docs/minutes.odt', [('content.xml', f'<office:document-content {O}><office:body><office:text>'
     '<text:h text:outline-level="1">Minutes</text:h><text:p>The committee approved the gazebo.</text:p>'
     '</office:text></office:body></office:document-content>')],
  first_stored=('mimetype', 'application/vnd.oasis.opendocument.text'))
z('docs/book.epub', [
  ('META-INF/container.xml', '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
     '<rootfile full-path="OPS/book.opf"/></rootfiles></container>'),
  ('OPS/book.opf', '<package xmlns="http://www.idpf.org/2007/opf"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
     '<dc:title>Lighthouse Tales</dc:title><dc:creator>E. Keeper</dc:creator></metadata>'
     '<manifest><item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/></manifest><spine><itemref idref="c1"/></spine></package>'),
  ('OPS/c1.xhtml', '<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>The Lamp</h1><p>The keeper trimmed the wick nightly.</p></body></html>')],
  first_stored=('mimetype', 'application/epub+zip'))
open('docs/memo.rtf', 'w').write(r'{\rtf1\ansi{\info{\title Memo}}\pard Please water the ficus\par}')
# hostile
with zipfile.ZipFile('bad/bomb.docx', 'w', zipfile.ZIP_DEFLATED) as f:
    f.writestr('word/document.xml', b'<' * (64 << 20))
z('bad/xxe.docx', [('word/document.xml', '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     f'<w:document {W}><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>')])
z('bad/plain.docx', [('readme.txt', 'just a zip')])
EOF

out=$("$CAIRN" add docs 2>&1); rc=$?
echo "$out" | sed 's/^/  | /'
check "[ $rc -eq 0 ]"
check "grep -q '6 added' <<<\"\$out\""
s=$("$CAIRN" search anemometer 2>&1); check "grep -q 'report.docx' <<<\"\$s\" && grep -q 'Quarterly findings' <<<\"\$s\""
s=$("$CAIRN" search --json flamingo 2>&1); check "grep -q 'deck.pptx' <<<\"\$s\" && grep -q '\"page\": *2' <<<\"\$s\""
s=$("$CAIRN" search torque wrench 2>&1); check "grep -q 'inventory.xlsx' <<<\"\$s\""
s=$("$CAIRN" search gazebo 2>&1); check "grep -q 'minutes.odt' <<<\"\$s\""
s=$("$CAIRN" search wick 2>&1); check "grep -q 'book.epub' <<<\"\$s\""
s=$("$CAIRN" search ficus 2>&1); check "grep -q 'memo.rtf' <<<\"\$s\""
s=$("$CAIRN" search --json --where 'author = "Dana"' anemometer 2>&1); check "grep -q 'report.docx' <<<\"\$s\""
s=$("$CAIRN" search --json --where 'type = "epub"' keeper 2>&1); check "grep -q 'book.epub' <<<\"\$s\""

out=$("$CAIRN" add bad 2>&1)
echo "$out" | sed 's/^/  | /'
check "grep -q 'skipped: bad/bomb.docx: zip bomb refused' <<<\"\$out\""
check "grep -q 'bad/xxe.docx: .*DOCTYPE refused' <<<\"\$out\""
check "grep -q 'skipped: bad/plain.docx: zip archive: not supported' <<<\"\$out\""
s=$("$CAIRN" search root 2>&1); check "! grep -q 'xxe.docx' <<<\"\$s\""      # /etc/passwd never read

echo "$n checks, $fail failures"
[ $fail -eq 0 ]
