"""Play a Label Studio project through its API as its users would (runs inside .venv-labelstudio).

The manager creates a project from distill's ``label_config.xml`` and imports its ``tasks.json``;
the annotator submits one annotation per task (the ``result`` regions and the ``lead_time`` seconds
given in ANSWERS, keyed by ``data.distill_id``); the manager exports the finished tasks as JSON
(the project's Export button: ``GET /api/projects/<id>/export?exportType=JSON``) into OUT.

    .venv-labelstudio/bin/python tests/integration/labelstudio_driver.py URL REFRESH_TOKEN FOLDER ANSWERS OUT

REFRESH_TOKEN is a personal access token (a JWT refresh token, ``POST /api/token/``): the SDK
trades it for short-lived access tokens at ``/api/token/refresh/`` and sends ``Bearer`` headers;
the legacy ``Token`` header is off by default for new organizations since Label Studio 1.20.
It runs in Label Studio's own environment because label-studio-sdk pins its own pydantic, httpx and
pandas ranges; distill's environment never imports it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(url: str, token: str, folder: str, answers_file: str, out: str) -> int:
    from label_studio_sdk import LabelStudio

    ls = LabelStudio(base_url=url, api_key=token)
    folder_path = Path(folder)
    answers = json.loads(Path(answers_file).read_text())
    project = ls.projects.create(title=f"distill {folder_path.parent.name}",
                                 label_config=(folder_path / "label_config.xml").read_text())
    ls.projects.import_tasks(id=project.id, request=json.loads((folder_path / "tasks.json").read_text()))
    tasks = list(ls.tasks.list(project=project.id, fields="all"))
    if len(tasks) != len(answers):
        print(f"driver: the project holds {len(tasks)} tasks, ANSWERS has {len(answers)}", file=sys.stderr)
        return 1
    for task in tasks:
        answer = answers[task.data["distill_id"]]
        ls.annotations.create(id=task.id, result=answer["result"], lead_time=answer["lead_time"],
                              was_cancelled=False)
    exported = b"".join(ls.projects.exports.download_sync(project.id, export_type="JSON"))
    Path(out).write_bytes(exported)
    print(f"driver: project {project.id}: {len(tasks)} tasks annotated and exported to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
