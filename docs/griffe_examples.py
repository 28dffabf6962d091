"""A Griffe extension for the API reference: read a docstring's "Example:" section as Griffe's "Examples:".

The code's docstrings head their doctests "Example:", which the Google style guide allows and Sphinx' napoleon
reads as a section, but Griffe's Google parser knows only "Examples:" and renders "Example:" as an admonition
whose `>>>` lines turn into nested block quotes. mkdocs.yml loads this file (`extensions:`).
"""

import re

import griffe

_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", flags=re.M)


class ExampleSections(griffe.Extension):
    """Rename each docstring's "Example:" heading to "Examples:" before Griffe parses the sections."""

    def on_object(self, *, obj: griffe.Object, **kwargs: object) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
