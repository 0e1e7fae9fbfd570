"""The `pgrag` CLI through Typer's runner and as real subprocesses, including clean shutdown on signals."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from typer.testing import CliRunner

from pgrag.cli import app
from conftest import fresh_dir, minimal_pdf, write_files

runner = CliRunner()


def pgrag(*args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "pgrag.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_ingest_search_delete_via_runner(collection, tmp_path, cli_env, monkeypatch):
    for key in ("PGRAG_DATA_DIR", "PGRAG_RERANKER"):
        monkeypatch.setenv(key, cli_env[key])
    folder = write_files(tmp_path / "docs", {"owls.md": "# Owls\n\nBarn owls hunt voles at dusk.\n",
                                             # NUL bytes without a BOM: binary (a UTF-16 BOM would make it text)
                                             "bad.txt": b"\x00\x01\x00garbage"})
    result = runner.invoke(app, ["ingest", str(folder), "-c", collection])
    assert result.exit_code == 0, result.output
    assert "1 added" in result.stdout and "1 failed" in result.stdout
    assert "bad.txt" in result.stderr

    result = runner.invoke(app, ["search", "what do barn owls eat", "-c", collection, "--json", "-k", "2"])
    hits = json.loads(result.stdout)
    assert hits[0]["source"].endswith("owls.md") and "voles" in hits[0]["content"]

    assert runner.invoke(app, ["delete", str(folder / "owls.md"), "-c", collection]).exit_code == 0
    missing = runner.invoke(app, ["delete", str(folder / "owls.md"), "-c", collection])
    assert missing.exit_code == 1 and "no document" in missing.stderr


def test_search_results_show_where_and_what_in_80_columns(collection, tmp_path, cli_env):
    deep = tmp_path / "a-rather-long-folder-name" / "another-level-of-nesting" / "and-one-more"
    folder = write_files(deep, {"owl-field-notes.md": "# Night hunting\n\nBarn owls hunt voles at night by sound.\n",
                                "bees.md": "Bees dance to show where the flowers are.\n"})
    assert pgrag("ingest", str(folder), "-c", collection, env=cli_env).returncode == 0
    result = pgrag("search", "how do owls hunt voles", "-c", collection, env={**cli_env, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert "owl-field-notes.md" in result.stdout and "Night hunting" in result.stdout
    assert "voles" in result.stdout and max(len(line) for line in result.stdout.splitlines()) <= 80


def test_limits_and_reader_warnings_go_to_the_log(collection, tmp_path, cli_env):
    long_text = "\n\n".join(f"Paragraph {i} is about lighthouses and the keepers who logged the weather." for i in range(40))
    folder = write_files(tmp_path / "docs", {
        "small.md": "# Otters\n\nSea otters crack shellfish with rocks.\n",
        "big.txt": "x" * 5000,
        "long.md": long_text[:1500],
        # A PDF whose cross-reference pointer is wrong: pypdf recovers the text and warns about it.
        "odd.pdf": minimal_pdf("Tidal energy output is rising.").replace(b"startxref\n", b"startxref\n1"),
    })
    env = {**cli_env, "PGRAG_MAX_FILE_MB": "0.002", "PGRAG_MAX_DOCUMENT_CHUNKS": "2", "PGRAG_CHUNK_SIZE": "200"}
    result = pgrag("ingest", str(folder), "-c", collection, env=env)
    assert result.returncode == 0, result.stderr
    assert "2 added" in result.stdout and "2 failed" in result.stdout
    skipped = " ".join(result.stderr.split()).split("Skipped ")[1:]  # Rich wraps long lines
    assert len(skipped) == 2
    assert "big.txt" in skipped[0] and "PGRAG_MAX_FILE_MB" in skipped[0]
    assert "long.md" in skipped[1] and "PGRAG_MAX_DOCUMENT_CHUNKS" in skipped[1]
    assert "pypdf" not in result.stderr and "startxref" not in result.stderr
    log = (Path(cli_env["PGRAG_DATA_DIR"]) / "logs" / "pgrag.log").read_text()
    assert "pypdf" in log and "Skipped" in log and "big.txt" in log


def test_user_errors_are_one_line_not_a_traceback(cli_env):
    result = pgrag("search", "x", "-c", "no_such_collection", env=cli_env)
    assert result.returncode == 1 and "No collection named" in result.stderr and "Traceback" not in result.stderr
    result = pgrag("search", "x", "--mode", "fuzzy", env=cli_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = pgrag("ingest", "/no/such/path", env=cli_env)
    assert result.returncode == 2 and "no such file" in result.stderr


def test_ask_as_subprocess(collection, tmp_path, cli_env):
    folder = write_files(tmp_path / "d", {"tea.txt": "Green tea is steeped at 80 degrees for two minutes.\n"})
    assert pgrag("ingest", str(folder), "-c", collection, env=cli_env).returncode == 0
    result = pgrag("ask", "How long is green tea steeped?", "-c", collection, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "[1]" in result.stdout and "tea.txt" in result.stdout and "cited" in result.stdout
    as_json = json.loads(pgrag("ask", "How long is green tea steeped?", "-c", collection, "--json", env=cli_env).stdout)
    assert {"answer", "citations", "sources", "retrieval", "grounded", "abstained", "timings"} <= set(as_json)
    assert as_json["sources"][0]["source"].endswith("tea.txt") and "dense_score" in as_json["sources"][0]["scores"]
    assert as_json["timings"]["total_s"] > 0 and as_json["retrieval"]["weak"] is False


def test_eval_answers_on_a_tiny_question_set(collection, tmp_path, cli_env):
    folder = write_files(tmp_path / "d", {"tea.txt": "Green tea is steeped at 80 degrees for two minutes.\n",
                                         "coffee.txt": "Espresso is brewed at nine bar of pressure.\n"})
    assert pgrag("ingest", str(folder), "-c", collection, env=cli_env).returncode == 0
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"question": "At what temperature is green tea steeped?", "answer": r"\b80\b",
                    "gold": ["tea.txt"]}) + "\n"
        + json.dumps({"question": "Who invented the espresso machine?", "answerable": False}) + "\n")
    out = tmp_path / "answers.json"
    result = pgrag("eval-answers", str(questions), "-c", collection, "--json", str(out), env=cli_env)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())["models"][0]["metrics"]
    assert metrics["questions"] == 2 and metrics["correct"] == 1.0 and metrics["citation_precision"] == 1.0
    assert metrics["first_token_p50_s"] is not None and "correct" in result.stdout


def test_eval_can_leave_the_collection_as_it_stands(collection, tmp_path, cli_env, monkeypatch):
    for key in ("PGRAG_DATA_DIR", "PGRAG_RERANKER"):
        monkeypatch.setenv(key, cli_env[key])
    folder = write_files(tmp_path / "beir", {
        "corpus.jsonl": json.dumps({"_id": "d1", "title": "Tea", "text": "Green tea is steeped at 80 degrees."}),
        "queries.jsonl": json.dumps({"_id": "q1", "text": "green tea temperature"}),
        "qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n"})
    args = ["eval", str(folder), "-c", collection, "--modes", "hybrid", "--no-baselines"]
    missing = runner.invoke(app, [*args, "--no-ingest"])
    assert missing.exit_code == 1 and collection in missing.stderr  # says which collection to ingest first
    assert runner.invoke(app, args).exit_code == 0
    # A corpus that changed since is not ingested: the collection is evaluated as built.
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "Tea", "text": "Steep it at 90 degrees."}))
    assert runner.invoke(app, [*args, "--no-ingest"]).exit_code == 0
    found = runner.invoke(app, ["search", "steeped at 80 degrees", "-c", collection, "--json"])
    assert "80 degrees" in json.loads(found.stdout)[0]["content"]


def postgres_running(pgdata) -> bool:
    return any(
        proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or [])
        for proc in psutil.process_iter(["name", "cmdline"])
    )


def test_embedded_server_stops_on_sigterm_and_ctrl_c(cli_env):
    for sig in (signal.SIGTERM, signal.SIGINT):
        data_dir = fresh_dir("pgrag-signal-")
        env = {**cli_env, "PGRAG_DATA_DIR": str(data_dir)}
        proc = subprocess.Popen([sys.executable, "-m", "pgrag.cli", "db", "psql", "--", "-c", "SELECT pg_sleep(60)"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not postgres_running(data_dir / "pgdata") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert postgres_running(data_dir / "pgdata")
        time.sleep(1)
        proc.send_signal(sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while postgres_running(data_dir / "pgdata") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not postgres_running(data_dir / "pgdata"), f"server outlived {sig.name}"


def wait_for(condition, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    return condition()


def test_embedded_server_memory_comes_from_the_setting(cli_env):
    env = {**cli_env, "PGRAG_DATA_DIR": str(fresh_dir("pgrag-memory-")), "PGRAG_EMBEDDED_SHARED_BUFFERS_MB": "48"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-m", "pgrag.cli", "db", "psql", "--", "-Atc", "SHOW shared_buffers"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "48MB", result.stderr


def test_stale_pid_file_of_a_stranger_and_a_killed_client(cli_env):
    data_dir = fresh_dir("pgrag-stale-")
    pgdata = data_dir / "pgdata"
    env = {**cli_env, "PGRAG_DATA_DIR": str(data_dir)}
    client = subprocess.Popen([sys.executable, "-m", "pgrag.cli", "db", "psql", "--", "-c", "SELECT pg_sleep(60)"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def psql() -> list[psutil.Process]:
        return [child for child in psutil.Process(client.pid).children() if child.name() == "psql"]

    assert wait_for(psql) and postgres_running(pgdata)
    pid_file = (pgdata / "postmaster.pid").read_text().splitlines()
    # A client killed with -9 never says goodbye; the next command reaps it, and stops the server when it leaves.
    for proc in [*psql(), psutil.Process(client.pid)]:
        proc.kill()
    client.wait()
    assert postgres_running(pgdata)
    assert pgrag("collections", env=env).returncode == 0
    assert wait_for(lambda: not postgres_running(pgdata), 15), "a dead client kept the server running"

    # A crash left postmaster.pid behind, and its PID now belongs to an unrelated process.
    stranger = subprocess.Popen(["sleep", "120"])
    try:
        (pgdata / "postmaster.pid").write_text("\n".join([str(stranger.pid), *pid_file[1:]]) + "\n")
        result = pgrag("collections", env=env)
        assert result.returncode == 0, result.stderr
        assert stranger.poll() is None, "pgrag signalled a process that was not its server"
    finally:
        stranger.kill()
