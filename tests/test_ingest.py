"""Ingest on the real database: idempotency, updates, deletes, bad files, and crash safety."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from pgrag.ingest.loaders import load
from pgrag.ingest.splitting import Chunk, Splitter
from conftest import minimal_pdf, write_files

GOOD = {
    "guide.md": "# Guide\n\nThe harbour ferry leaves every hour.\n\n## Tickets\n\nTickets are sold at the pier kiosk.\n",
    "notes.txt": "Lighthouse keepers logged the weather twice a day.\n",
    "page.html": "<html><head><title>Museum</title><script>var x=1;</script></head><body><h1>Opening hours</h1>"
                 "<p>The museum opens at nine.</p></body></html>",
    "report.pdf": minimal_pdf("The quarterly report shows tidal energy output rising."),
}


def chunk_rows(kb, collection):
    with kb.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT d.source, count(c.id) AS chunks, count(e.chunk_id) AS vectors FROM documents d "
            "JOIN collections col ON col.id = d.collection_id LEFT JOIN chunks c ON c.document_id = d.id "
            "LEFT JOIN chunk_embeddings e ON e.chunk_id = c.id WHERE col.name = :c GROUP BY d.source"
        ), {"c": collection}).all()


def test_ingest_is_idempotent_updates_and_deletes(kb, collection, tmp_path):
    folder = write_files(tmp_path / "docs", GOOD)
    first = kb.ingest([folder], collection=collection)
    assert len(first.added) == 4 and not first.failed, first.failed
    assert {Path(row.source).name for row in chunk_rows(kb, collection)} == set(GOOD)
    assert all(row.chunks == row.vectors > 0 for row in chunk_rows(kb, collection))

    again = kb.ingest([folder], collection=collection)
    assert again.added == again.updated == [] and len(again.unchanged) == 4 and again.chunks == 0

    (folder / "notes.txt").write_text("Lighthouse keepers now log the weather every hour.\n")
    changed = kb.ingest([folder], collection=collection)
    assert [Path(s).name for s in changed.updated] == ["notes.txt"] and len(changed.unchanged) == 3
    hits = kb.search_hits("lighthouse weather log", collection=collection, mode="lexical", k=10)
    assert [h.content for h in hits if "Lighthouse" in h.content] == ["Lighthouse keepers now log the weather every hour."]

    assert kb.delete(str(folder / "notes.txt"), collection=collection)
    assert not kb.delete(str(folder / "notes.txt"), collection=collection)
    assert "notes.txt" not in {Path(row.source).name for row in chunk_rows(kb, collection)}


def test_bad_files_are_reported_and_skipped(kb, collection, tmp_path):
    folder = write_files(tmp_path / "mixed", {
        **GOOD,
        "binary.txt": b"\x00\x01\x02\x03binary",
        "empty.md": b"   \n",
        "latin1.txt": "caf\xe9 au lait".encode("latin-1"),
        "broken.pdf": b"%PDF-1.4 this is not really a pdf",
    })
    report = kb.ingest([folder], collection=collection)
    reasons = {Path(name).name: reason for name, reason in report.failed}
    assert set(reasons) == {"binary.txt", "empty.md", "latin1.txt", "broken.pdf"}
    assert "binary" in reasons["binary.txt"] and "empty" in reasons["empty.md"]
    assert "UTF-8" in reasons["latin1.txt"] and "PDF" in reasons["broken.pdf"]
    assert len(report.added) == len(GOOD)


def test_fifos_outside_links_and_utf16(kb, collection, tmp_path):
    """A FIFO never blocks ingest, a link out of the folder is not followed, UTF-16 text is read."""
    outside = write_files(tmp_path / "outside", {"secret.txt": "The vault code is 4471.\n"})
    folder = write_files(tmp_path / "docs", {"utf16.txt": "Ein Faß voll Kümmel.\n".encode("utf-16")})
    (folder / "leak.txt").symlink_to(outside / "secret.txt")
    (folder / "inside.txt").symlink_to(folder / "utf16.txt")
    os.mkfifo(folder / "pipe.txt")
    report = kb.ingest([folder], collection=collection)
    assert sorted(Path(s).name for s in report.added) == ["utf16.txt"]  # inside.txt resolves to the same file
    assert report.failed == []  # in a folder, a pipe is not a file to ingest
    assert not kb.search_hits("vault code", collection=collection, mode="lexical")
    assert "Kümmel" in kb.search_hits("Kümmel", collection=collection, mode="lexical")[0].content
    named = kb.ingest([folder / "pipe.txt"], collection=collection)  # named directly: reported, not read
    assert "regular file" in named.failed[0][1] and not named.added


def test_an_html_title_is_read_as_text(tmp_path):
    """Entities decoded and whitespace folded: Sphinx writes "VACUUM &#8212; Manual" into every page's title, which
    is shown with sources and indexed with every chunk."""
    from pgrag.ingest import loaders

    page = tmp_path / "vacuum.html"
    page.write_text("<html><head><title>VACUUM &#8212;\n   Manual &amp; notes</title></head><body><p>Reclaims "
                    "storage.</p></body></html>")
    assert loaders.load(page).metadata["title"] == "VACUUM — Manual & notes"


def test_an_html_page_is_read_as_its_content_in_markdown(tmp_path):
    """Navigation is left out, a table row keeps its cells together, and a paragraph wrapped in the page's source
    reads as one line: what a browser shows, in the shape the splitter and the answer's excerpts need."""
    from pgrag.ingest import loaders

    page = tmp_path / "struct.html"
    page.write_text(
        "<html><body><div class='related' role='navigation'>previous | next | modules</div>"
        "<div class='body' role='main'><h1>struct<a class='headerlink' href='#s'>¶</a></h1>"
        "<p>The first character of the format\n   string selects the <em>byte order</em>.</p>"
        "<table><tr><th>Character</th><th>Byte order</th></tr><tr><td><code>!</code></td>"
        "<td>network (= big-endian)</td></tr></table></div>"
        "<div class='sphinxsidebar'><h3>Previous topic</h3><p>codecs</p></div></body></html>")
    text = loaders.load(page).sections[0].text
    assert text.startswith("# struct\n")
    assert "The first character of the format string selects the byte order." in text
    assert "| `!` | network (= big-endian) |" in text
    assert "previous" not in text.lower() and "codecs" not in text and "¶" not in text


def split_file(page: Path, content: str, chunk_size: int = 1000, contextual: bool = False) -> list[Chunk]:
    page.write_text(content)
    loaded = load(page)
    return Splitter(chunk_size, 0, contextual).split(loaded.sections, loaded.kind, loaded.metadata["title"])


def test_no_break_spaces_stay_spaces_in_chunks(tmp_path):
    """A no-break space ("Table&nbsp;8.2", a numbered heading) parts two words in what is shown, indexed and
    embedded; LangChain's heading splitter, left to itself, drops it and glues them ("Table8.2")."""
    [chunk] = split_file(tmp_path / "numeric.html", "<html><body><h3>8.1.1.&nbsp;Integer Types</h3><p>The ranges "
                         "are listed in Table&nbsp;8.2,\tand\u2028more.</p></body></html>", contextual=True)
    assert "Table 8.2, and\nmore." in chunk.text and chunk.metadata["headings"] == "8.1.1. Integer Types"


def test_chunks_keep_code_indentation(tmp_path):
    """Code in a chunk stays runnable, and a comment line in a code block opens no section."""
    [chunk] = split_file(tmp_path / "guide.md", "# Guide\n\n## Loops\n\nCount down:\n\n"
                         "```python\n# count down\nfor i in range(3):\n    print(i)\n```\n")
    assert chunk.metadata["headings"] == "Guide > Loops"
    assert "# count down\nfor i in range(3):\n    print(i)" in chunk.text


def test_code_indentation_does_not_move_chunk_boundaries(tmp_path):
    """Chunks end where they would end without indentation: sizes count the words that are indexed."""
    lines = [f"{'    ' * (i % 3)}step_{i}(value={i})" for i in range(60)]
    indented = split_file(tmp_path / "indented.md", "```\n" + "\n".join(lines) + "\n```\n", chunk_size=200)
    flat = split_file(tmp_path / "flat.md", "```\n" + "\n".join(line.strip() for line in lines) + "\n```\n",
                      chunk_size=200)
    assert len(indented) > 3 and [c.text.split() for c in indented] == [c.text.split() for c in flat]
    assert "\n    step_1(value=1)" in indented[0].text


def test_a_note_box_title_does_not_open_a_section(tmp_path):
    """DocBook titles its note boxes with a heading; the text after the box stays in the section it is in."""
    [chunk] = split_file(tmp_path / "app-psql.html", "<html><body><h2>Meta-Commands</h2><div class='note'><h3 "
                         "class='title'>Note</h3><p>Quote arguments.</p></div><p>The timing command shows how long "
                         "each statement takes.</p></body></html>")
    assert chunk.metadata["headings"] == "Meta-Commands"
    assert "Note:" in chunk.text and "# Note" not in chunk.text


def test_an_html_page_nested_too_deep_for_markdown_is_read_as_text(tmp_path):
    """Unclosed tags nest a page as deep as they are many; such a page is still read, as plain text."""
    from pgrag.ingest import loaders

    page = tmp_path / "deep.html"
    page.write_text("<html><body>" + "<div>" * 3000 + "<p>Deep inside.</p>" + "</div>" * 3000 + "</body></html>")
    assert loaders.load(page).sections[0].text == "Deep inside."


def test_html_and_pdf_text_is_searchable(kb, collection, tmp_path):
    kb.ingest([write_files(tmp_path / "d", GOOD)], collection=collection)
    html = kb.search_hits("museum opening hours", collection=collection, mode="lexical", k=1)[0]
    assert "opens at nine" in html.content and "var x" not in html.content
    assert html.metadata["title"] == "Museum" and html.metadata["headings"] == "Opening hours"
    pdf = kb.search_hits("tidal energy", collection=collection, mode="lexical", k=1)[0]
    assert pdf.source.endswith("report.pdf") and pdf.metadata["page"] == 1


def test_crash_mid_ingest_leaves_only_whole_documents(kb, collection, tmp_path, cli_env):
    paragraph = "Section {i}.{j}: the survey team measured river depth and flow at station {i} on day {j}. " * 6
    files = {f"doc{i:02d}.txt": "\n\n".join(paragraph.format(i=i, j=j) for j in range(6)) for i in range(40)}
    folder = write_files(tmp_path / "many", files)
    env = {**cli_env, "PGRAG_EMBED_BATCH_SIZE": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "pgrag.cli", "ingest", str(folder), "-c", collection], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(chunk_rows(kb, collection)) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    splitter = Splitter(kb.settings.chunk_size, kb.settings.chunk_overlap)
    rows = chunk_rows(kb, collection)
    assert 3 <= len(rows) < len(files), "the kill should land mid-ingest"
    for row in rows:
        loaded = load(Path(row.source))
        assert row.chunks == row.vectors == len(splitter.split(loaded.sections, loaded.kind)), row.source

    resumed = kb.ingest([folder], collection=collection)
    assert len(resumed.unchanged) == len(rows) and len(resumed.added) == len(files) - len(rows)


def test_chunks_are_indexed_with_title_and_headings_but_shown_clean(kb, collection, tmp_path):
    paragraphs = "\n\n".join(f"Paragraph {i} explains how the valves are cleaned and inspected." for i in range(30))
    folder = write_files(tmp_path / "docs", {"manual.md": f"# Zephyrine pump\n\n## Maintenance\n\n{paragraphs}\n"})
    kb.ingest([folder], collection=collection)
    with kb.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT ch.content, ch.context FROM chunks ch JOIN collections c ON c.id = ch.collection_id "
            "WHERE c.name = :c ORDER BY ch.ordinal"), {"c": collection}).all()
    assert len(rows) > 2
    deep = rows[-1]
    assert deep.context == "Zephyrine pump > Maintenance" and "Zephyrine" not in deep.content
    assert rows[0].context == ""  # the first chunk starts with both headings already
    hits = kb.search_hits("zephyrine", collection=collection, mode="lexical", k=50)
    assert len(hits) == len(rows) and sum("Zephyrine" in h.content for h in hits) == 1


def office_and_book_files(folder: Path) -> dict[str, bytes]:
    """A Word document, slides and an EPUB written by the tests (python-docx, python-pptx, zipfile)."""
    import io
    import zipfile

    import docx
    from pptx import Presentation

    document = docx.Document()
    document.add_heading("Harbour handbook", level=1)
    document.add_heading("Tides", level=2)
    document.add_paragraph("The harbour gate closes two hours before low tide.")
    word = io.BytesIO()
    document.save(word)

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    slide.placeholders[1].text = "Kelp farm revenue doubled this quarter."
    slides = io.BytesIO()
    deck.save(slides)

    book = io.BytesIO()
    with zipfile.ZipFile(book, "w") as epub:
        epub.writestr("mimetype", "application/epub+zip")
        epub.writestr("META-INF/container.xml", '<container><rootfiles><rootfile full-path="OEBPS/book.opf"/>'
                                                '</rootfiles></container>')
        epub.writestr("OEBPS/book.opf", '<package><manifest><item id="c1" href="one.xhtml"/></manifest>'
                                        '<spine><itemref idref="c1"/></spine></package>')
        epub.writestr("OEBPS/one.xhtml", "<html><body><h1>Chapter one</h1><p>The lighthouse keeper kept a cat "
                                         "named Biscuit.</p></body></html>")
    return {"handbook.docx": word.getvalue(), "results.pptx": slides.getvalue(), "novel.epub": book.getvalue()}


def test_office_books_records_and_code(kb, collection, tmp_path):
    folder = tmp_path / "formats"
    write_files(folder, {
        **office_and_book_files(folder),
        "ships.csv": "name,port,cargo\nAurora,Bergen,salted cod\nBorealis,Tromso,timber\n",
        "events.jsonl": '{"event": "regatta", "month": "June"}\n{"event": "fish market", "month": "May"}\n',
        "tides.py": "def high_tide(hour: int) -> bool:\n    \"\"\"Whether the harbour gate is open.\"\"\"\n"
                    "    return hour % 12 < 6\n",
        "broken.docx": b"PK not really a zip", "broken.pptx": b"garbage", "broken.epub": b"garbage",
        "broken.jsonl": '{"ok": 1}\n{not json\n',
    })
    report = kb.ingest([folder], collection=collection)
    reasons = {Path(name).name: reason for name, reason in report.failed}
    assert len(report.added) == 6, (report.added, reasons)
    assert set(reasons) == {"broken.docx", "broken.pptx", "broken.epub", "broken.jsonl"}
    assert "Word document" in reasons["broken.docx"] and "PowerPoint" in reasons["broken.pptx"]
    assert "EPUB" in reasons["broken.epub"] and "line 2" in reasons["broken.jsonl"]

    def top(query: str):
        return kb.search_hits(query, collection=collection, mode="lexical", k=1)[0]

    assert top("harbour gate low tide").source.endswith("handbook.docx")
    assert top("harbour gate low tide").metadata["headings"] == "Harbour handbook > Tides"
    assert top("kelp farm revenue").metadata["slide"] == 1
    assert "Biscuit" in top("lighthouse keeper cat").content
    borealis = top("Borealis timber")
    assert borealis.metadata["row"] == 2 and "Aurora" not in borealis.content  # a row is a record
    assert top("regatta").metadata["line"] == 1
    assert top("high_tide harbour gate open").metadata["language"] == "python"
