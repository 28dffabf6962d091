"""A Griffe extension for the API reference: render the docstrings' doctests as code.

The code's docstrings head their doctests "Example:", which the Google style guide allows and Sphinx' napoleon
reads as a section, but Griffe's Google parser knows only "Examples:" and renders "Example:" as an admonition
whose `>>>` lines turn into nested Markdown block quotes. A few docstrings also show a doctest in their running
text, outside any section, where Markdown does the same. This extension renames the heading and fences the
bare doctests (`pycon`) before Griffe parses the sections; mkdocs.yml loads it (`extensions:`).
"""

import re

import griffe

_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", flags=re.M)
# A doctest that starts a line of the running text (an indented one belongs to a section): up to a blank line.
_BARE_DOCTEST = re.compile(r"^>>> .*(?:\n(?![ \t]*$).*)*", flags=re.M)


class ExampleSections(griffe.Extension):
    """Read "Example:" as "Examples:" and fence doctests in the running text, before Griffe parses sections."""

    # on_instance, not on_object: Griffe fires on_object for members only, never for the top-level module.
    def on_instance(self, *, obj: griffe.Object, **kwargs: object) -> None:
        if obj.docstring is not None:
            value = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _BARE_DOCTEST.sub(lambda m: f"```pycon\n{m.group(0)}\n```", value)
