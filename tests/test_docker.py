"""Docker cannot run here, so the compose file and Dockerfile are checked statically: structure and wiring."""

import re
from pathlib import Path

import yaml

DOCKER = Path(__file__).parents[1] / "docker"


def test_compose_wires_database_migrations_and_app():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "migrate", "app"}
    assert "pgvector" in services["db"]["image"] and "healthcheck" in services["db"]
    assert services["migrate"]["command"] == ["pgrag", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["app"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("migrate", "app"):
        url = services[name]["environment"]["DATABASE_URL"]
        assert re.match(r"postgresql://pgrag:.+@db:5432/pgrag$", url)
        build = services[name]["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == (DOCKER / "Dockerfile").resolve()
    assert services["app"]["ports"] == ["${PGRAG_PORT:-8000}:8000"]


def test_dockerfile_builds_what_the_project_needs():
    text = (DOCKER / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert instructions[0] == "FROM" and "CMD" in instructions and "EXPOSE" in instructions
    for path in ("app", "chains", "migrations", "pyproject.toml"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", text, re.MULTILINE), path
        assert (DOCKER.parent / path).exists()
    assert "torch==2.13.0" in text and "GGML_NATIVE=OFF" in text
    assert '"pgrag", "serve", "--host", "0.0.0.0"' in text
