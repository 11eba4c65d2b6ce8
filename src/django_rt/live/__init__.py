"""The live engine: templates analysed once, renders that record what each part read."""

from __future__ import annotations

from django.template.base import Template


def install() -> None:
    """Hook the live engine into Django's template engine (once per process): analyse
    every template when it is compiled, and let tracked renders record node by node."""
    from . import reads
    from .analysis import analyse_template
    from .recorder import install as install_recorder

    install_recorder()
    reads.install()
    if getattr(Template.compile_nodelist, "_rt_installed", False):
        return
    original = Template.compile_nodelist

    def compile_nodelist(self: Template):  # type: ignore[no-untyped-def]
        nodelist = original(self)
        analyse_template(nodelist)
        return nodelist

    compile_nodelist._rt_installed = True  # type: ignore[attr-defined]
    Template.compile_nodelist = compile_nodelist  # type: ignore[method-assign]
