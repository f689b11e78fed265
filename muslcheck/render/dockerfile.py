"""The plan as a Dockerfile fragment (``-o dockerfile[=FILE]``): the Alpine base image, one ``apk add`` line,
the ecosystems' reinstall commands, and as comments what a Dockerfile cannot do (upgrades, rebuilds, what
gcompat covers, what runs without its native part). A starting point to review, never a whole build."""

from __future__ import annotations

import re

from muslcheck.model.report import Report
from muslcheck.render.interface import Renderer

# Names come from the scanned files (sonames, package metadata): only these characters reach a RUN line, so a
# hostile name can never add a shell command; anything else is written as a comment.
_SAFE = re.compile(r"[A-Za-z0-9@/._=+:~-]+")


def render_dockerfile(report: Report) -> str:
    plan = report.plan
    t = report.target
    where = f"Alpine {t.alpine} (musl {t.musl})" if t.alpine else f"musl {t.musl}"
    lines = [f"# muslcheck {report.tool_version}: the plan for {_comment(report.source)} on {where}, verdict "
             f"{report.verdict.value}",
             "# A fragment to review: the application's own COPY and build steps are not here."]
    if plan.base_images and _SAFE.fullmatch(plan.base_images[0]):
        lines.append(f"FROM {plan.base_images[0]}")
        lines.extend(f"# this tree also holds a runtime whose Alpine image is {_comment(image)}"
                     for image in plan.base_images[1:])
    else:
        lines.append(f"FROM alpine:{t.alpine}" if t.alpine and t.alpine != "edge" else "FROM alpine:latest")
    safe = [spec for spec in plan.apk if _SAFE.fullmatch(spec)]
    named = [spec for spec in safe if not spec.startswith(("so:", "cmd:"))]
    if named:
        lines.append(f"RUN apk add --no-cache {' '.join(named)}")
    if provided := [spec for spec in safe if spec not in named]:
        lines.append("# apk picks the package that provides each of these; it stops if none does")
        lines.append(f"RUN apk add --no-cache {' '.join(provided)}")
    lines.extend(f"# not written as a command (unusual characters): apk add {_comment(spec)}"
                 for spec in plan.apk if spec not in safe)
    for step in plan.reinstall:
        # a command runs as it is; advice that is no single command stays a comment
        lines.append(f"RUN {step}" if _is_command(step) else f"# {_comment(step)}")
    for heading, items in (("upgrade", plan.upgrades), ("gcompat covers", plan.gcompat),
                           ("rebuild against musl", plan.rebuild), ("runs without its native part", plan.lost)):
        lines.extend(f"# {heading}: {_comment(item)}" for item in items)
    return "\n".join(lines) + "\n"


def _is_command(text: str) -> bool:
    return (text.startswith(("pip install ", "npm ci", "npm install", "npm rebuild "))
            and all(_SAFE.fullmatch(word) for word in text.split(" ")))


def _comment(text: str) -> str:
    """One line: a newline in a name would end the comment and start an instruction."""
    return " ".join(text.split())


RENDERER = Renderer("dockerfile", lambda report, options: render_dockerfile(report))
